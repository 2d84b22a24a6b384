"""`loopline history RUN` and `loopline logs RUN [--follow]`: a run's history as an operator reads it,
from a running `loopline dev` (or a deployed API): GET /runs/{id}/history, page by page."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from .client import api_call

ENDED = ("COMPLETED", "FAILED", "CANCELLED")
FOLLOW_POLL = 0.5  # seconds between two reads of a followed run


class HistoryRefused(Exception):
    """The API answered an error (an unknown run): printed as one line, exit 2."""


def pages(url: str, run_id: str) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """Each page of the run's history as it is now, with the cursor of the next."""
    cursor: str | None = None
    while True:
        query = "?limit=500" + (f"&cursor={quote(cursor, safe='')}" if cursor else "")
        status, body = api_call("GET", f"{url}/runs/{quote(run_id, safe='')}/history{query}")
        if status >= 400:
            raise HistoryRefused(body.get("error") if isinstance(body, dict) else str(body))
        cursor = body["next_cursor"]
        yield body["entries"], cursor
        if cursor is None:
            return


def line(entry: dict[str, Any]) -> str:
    what = f"task {entry['item']}" if entry["kind"] == "task" else "run"
    moved = f"{entry['previous'] or '-'} -> {entry['status']}"
    attempt = f" (attempt {entry['attempt']})" if entry["kind"] == "task" and entry["attempt"] else ""
    cause = entry.get("cause")
    because = f"  [{cause['kind']} {cause['name']}{' ' + cause['subject'] if cause['subject'] else ''}]" \
        if cause else ""
    return f"{entry['at']}  {what:<28} {moved:<24}{attempt}  {entry['reason']}{because}"


def cmd_history(args) -> int:
    entries = [e for page, _ in pages(args.url, args.run_id) for e in page]
    if args.json:
        from .cli import _write_stdout  # stdout is kept for the JSON alone (`--json`)

        _write_stdout(json.dumps({"run_id": args.run_id, "entries": entries}, indent=2))
    else:
        for entry in entries:
            print(line(entry))
        if not entries:
            print("no history yet")
    return 0


def cmd_logs(args) -> int:
    """The run's transitions with what each task's code printed when its attempt ended; with
    ``--follow``, new ones as they come, until the run ends. Each poll reads the whole history again:
    an entry may arrive after a later one (two writers, one stream), and must still be shown."""
    seen: set[tuple[str, str]] = set()
    while True:
        ended = False
        for entries, _ in pages(args.url, args.run_id):
            for entry in entries:
                key = (entry["at"], entry["seq"])
                ended = ended or (entry["kind"] == "run" and entry["status"] in ENDED)
                if key in seen:
                    continue
                seen.add(key)
                print(line(entry), flush=True)
                if entry["kind"] == "task" and entry["status"] in ENDED + ("RETRYING",):
                    _print_output(args.url, args.run_id, entry["item"])
        if not args.follow or ended:
            return 0
        time.sleep(FOLLOW_POLL)


def _print_output(url: str, run_id: str, task: str) -> None:
    status, view = api_call("GET", f"{url}/runs/{quote(run_id, safe='')}")
    printed = ((view.get("tasks") or {}).get(task) or {}).get("printed") if status == 200 else None
    for text in (printed or "").splitlines():
        print(f"    {task}| {text}", flush=True)
    sys.stdout.flush()
