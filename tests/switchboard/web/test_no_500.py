"""Issue 24, items 5 and 6 on the switchboard's pages: hostile page numbers and deep JSON."""

from __future__ import annotations

import pytest

from tests.web.conftest import Client

DEEP = '{"a":' * 5_000 + "1" + "}" * 5_000


@pytest.mark.parametrize("page", ["²", "٣", "99999999999999999999", "9" * 5000, "-1", ""])
def test_a_hostile_page_number_reads_as_the_first_page(client: Client, page: str) -> None:
    assert client.page(f"/switchboard/deliveries?page={page}").status_code == 200
    answer = client.submit("/switchboard/deliveries/search", {"page": page, "status": "sent"})
    assert answer.status_code == 303 and "page=" not in answer.headers["location"]


def test_deeply_nested_data_in_the_template_editor_is_a_clear_error(client: Client) -> None:
    answer = client.submit("/switchboard/templates/email/welcome", {"data": DEEP})
    assert answer.status_code == 400 and "nested too deeply" in answer.text
