"""What the local stand-ins were asked to do: sent mail, text messages, calls, LLM prompts.

A thread-safe in-process record, bounded to the most recent entries. The dev
server shows it at ``GET /_dev/outbox``; tests read it with :func:`entries`.
Each entry is ``{type, at, task_id, run_id, request, result}``; ``at`` is the engine clock's time (a
movable clock's under ``loopline dev --movable-clock``), as the run's own times are.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any

DEFAULT_LIMIT = 1000


class Outbox:
    def __init__(self, limit: int = DEFAULT_LIMIT):
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)

    def record(self, kind: str, task_id: str, run_id: str, request: dict[str, Any],
               result: dict[str, Any] | Any, at: datetime | None = None) -> dict[str, Any]:
        """``at``: the engine clock's time (a task's ``TaskMeta.at``); the wall clock's when not given."""
        moment = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        entry = {
            "type": kind,
            "at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "task_id": task_id,
            "run_id": run_id,
            "request": copy.deepcopy(request),
            "result": copy.deepcopy(result),
        }
        with self._lock:
            self._entries.append(entry)
        return copy.deepcopy(entry)

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; only entries of ``kind`` (``email``, ``sms``, ``voice``, ``llm``) when given."""
        with self._lock:
            chosen = [e for e in self._entries if kind is None or e["type"] == kind]
            return copy.deepcopy(chosen)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


OUTBOX = Outbox()


def record(kind: str, task_id: str, run_id: str, request: dict[str, Any], result: Any,
           at: datetime | None = None) -> dict[str, Any]:
    return OUTBOX.record(kind, task_id, run_id, request, result, at)


def entries(kind: str | None = None) -> list[dict[str, Any]]:
    return OUTBOX.entries(kind)


def clear() -> None:
    OUTBOX.clear()
