"""History in memory (local mode, tests): the same behaviour as DynamoHistory, held to it by
tests/component/test_history_contract.py. Nothing expires here: local runs are short-lived."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

from infra.ports import Page
from statemachine.history import AuditAction, AuditEntry, AuditQuery, HistoryEntry, Retention


class InMemoryHistory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, HistoryEntry]] = {}
        self._audit: dict[str, AuditEntry] = {}

    def append(self, entry: HistoryEntry, retention: Retention | None = None) -> bool:  # nothing expires here
        with self._lock:
            entries = self._runs.setdefault(entry.run_id, {})
            if entry.sort_key in entries:
                return False  # the same change record delivered again: kept once
            entries[entry.sort_key] = entry
            return True

    def append_all(self, entries: Sequence[HistoryEntry],
                   retention: Mapping[str, Retention | None] | None = None) -> list[bool]:  # nothing expires here
        return [self.append(entry) for entry in entries]  # memory does not fail part way

    def of_run(self, run_id: str, cursor: str | None = None, limit: int = 100) -> Page[HistoryEntry]:
        with self._lock:
            entries = [e for key, e in sorted(self._runs.get(run_id, {}).items()) if cursor is None or key > cursor]
        return _page(entries, limit)

    def record_action(self, entry: AuditEntry) -> bool:
        with self._lock:
            if entry.sort_key in self._audit:
                return False
            self._audit[entry.sort_key] = entry
            return True

    def actions(self, actor: str | None = None, action: AuditAction | Iterable[AuditAction] | None = None,
                since: str | None = None, cursor: str | None = None, limit: int = 100, *, until: str | None = None,
                workflow_id: str | None = None, run_id: str | None = None) -> Page[AuditEntry]:
        query = AuditQuery.of(actor, action, since, until, workflow_id, run_id)
        with self._lock:
            entries = [e for key, e in sorted(self._audit.items())
                       if (cursor is None or key > cursor) and query.matches(e)]
        return _page(entries, limit)


def _page(entries, limit: int) -> Page:
    shown = entries[:limit]
    return Page(shown, shown[-1].sort_key if len(entries) > limit and shown else None)
