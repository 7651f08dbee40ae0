"""An emulator of Elasticsearch/OpenSearch's ``_bulk`` API, keeping documents by index and id."""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from tests.support.emulators.base import Emulator, RecordedRequest, Reply, Scripted

_REASONS = {
    400: ("mapper_parsing_exception", "failed to parse field [amount] of type [long]"),
    409: ("version_conflict_engine_exception", "version conflict"),
    429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
    503: ("unavailable_shards_exception", "primary shard is not active"),
}


class ElasticsearchEmulator(Emulator):
    """Indexes ``_bulk`` documents; can fail whole requests or chosen items, as a busy cluster does."""

    main_endpoint = "bulk"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.documents: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self._items: deque[list[int]] = deque()
        self._docs_lock = threading.Lock()

    def route(self, method: str, path: str) -> str | None:
        return "bulk" if (method, path) in (("POST", "/_bulk"), ("PUT", "/_bulk")) else None

    def fail_items(self, *statuses: int) -> None:
        """The next bulk request answers these statuses for its items, in order (201 after them)."""
        with self._docs_lock:
            self._items.append(list(statuses))

    def error(self, status: int, *, retry_after: float | None = None) -> Scripted:
        kind, reason = _REASONS.get(status, ("exception", "error"))
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"error": {"type": kind, "reason": reason}, "status": status}
        return Scripted(Reply.json(status, body, headers))

    def respond(self, endpoint: str, request: RecordedRequest) -> Reply:
        lines = [line for line in request.body.decode().split("\n") if line.strip()]
        if len(lines) % 2:
            return Reply.json(
                400,
                {
                    "error": {
                        "type": "illegal_argument_exception",
                        "reason": "The bulk request must be terminated by a newline",
                    }
                },
            )
        with self._docs_lock:
            planned = self._items.popleft() if self._items else []
        items = []
        for n in range(0, len(lines), 2):
            action = json.loads(lines[n])["index"]
            status = planned[n // 2] if n // 2 < len(planned) else 0
            if status and not 200 <= status < 300:
                kind, reason = _REASONS.get(status, ("exception", "error"))
                items.append(
                    {
                        "index": {
                            "_index": action["_index"],
                            "_id": action["_id"],
                            "status": status,
                            "error": {"type": kind, "reason": reason},
                        }
                    }
                )
                continue
            key = f"{action['_index']}/{action['_id']}"
            with self._docs_lock:
                created = key not in self.documents
                self.documents[key] = json.loads(lines[n + 1])
                self.writes += 1
            items.append(
                {
                    "index": {
                        "_index": action["_index"],
                        "_id": action["_id"],
                        "result": "created" if created else "updated",
                        "status": 201 if created else 200,
                    }
                }
            )
        errors = any(not 200 <= i["index"]["status"] < 300 for i in items)
        return Reply.json(200, {"took": 3, "errors": errors, "items": items})

    def ids(self) -> list[str]:
        with self._docs_lock:
            return sorted(doc_key.split("/", 1)[1] for doc_key in self.documents)
