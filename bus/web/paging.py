"""Pages of a long list: which slice to read, and the links to the others."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bus.web.params import parse_int

PER_PAGE = 50
MAX_PER_PAGE = 500


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    total: int

    @classmethod
    def of(cls, params: Mapping[str, str], total: int, *, per_page: int = PER_PAGE) -> Pager:
        """The page asked for in ``?page=&per_page=``, kept within the list."""
        size = parse_int(params.get("per_page"), low=1, high=MAX_PER_PAGE) or per_page
        last = max(1, -(-total // size))
        return cls(min(last, parse_int(params.get("page"), low=1) or 1), size, total)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first_shown(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_shown(self) -> int:
        return min(self.total, self.offset + self.per_page)

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None
