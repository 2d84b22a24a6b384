"""`loopline runs` and `loopline status RUN`: the run listing and one run, read from a running
`loopline dev` (or a deployed API) over HTTP. Exit 0 when answered, 2 when the API refuses the
request (an unknown run, a bad filter) or no API answers (with a hint to start one)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote, urlencode

from .client import api_call

DEFAULT_URL = "http://127.0.0.1:8080"  # `loopline dev`'s default port
EXIT_OK, EXIT_REFUSED = 0, 2


def _emit(args: argparse.Namespace, body: Any) -> None:
    args.write_stdout(json.dumps(body, separators=(",", ":")))  # with --json, stdout holds this line only


def _refused(status: int, body: Any) -> int:
    error = body.get("error") if isinstance(body, dict) else body
    print(f"loopline: {error} (HTTP {status})", file=sys.stderr, flush=True)
    return EXIT_REFUSED


def _seconds(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}s"


def cmd_runs(args: argparse.Namespace) -> int:
    params = {"status": args.status, "workflow": args.workflow, "since": args.since, "until": args.until,
              "limit": args.limit, "cursor": args.cursor}
    query = urlencode({k: v for k, v in params.items() if v is not None})
    status, body = api_call("GET", f"{args.url.rstrip('/')}/runs" + (f"?{query}" if query else ""))
    if status >= 400:
        return _refused(status, body)
    if args.json:
        _emit(args, body)
        return EXIT_OK
    for run in body["runs"]:
        parent = f"  (child of {run['parent']})" if run.get("parent") else ""
        print(f"{run['run_id']}  {run['status']:<12} {run['workflow_id']:<24} {run['created_at']}  "
              f"{_seconds(run.get('duration_ms'))}{parent}")
    if not body["runs"]:
        print("no runs")
    if body.get("next_cursor"):
        print(f"more: loopline runs --cursor {body['next_cursor']} (with the same filters)")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status, view = api_call("GET", f"{args.url.rstrip('/')}/runs/{quote(args.run_id, safe='')}")
    if status >= 400:
        return _refused(status, view)
    if args.json:
        _emit(args, view)
        return EXIT_OK
    print(f"run {view['run_id']} ({view.get('workflow_id')}): {view['status']}, started {view.get('created_at')}, "
          f"took {_seconds(view.get('duration_ms'))}" + (f", child of {view['parent']}" if view.get("parent") else ""))
    for task_id, task in view["tasks"].items():
        times = (view.get("timing") or {}).get(task_id) or {}
        line = (f"  {task_id:<24} {task['status']:<10} attempts={task['attempts']:<3} "
                f"{_seconds(times.get('duration_ms')):>8}")
        if times.get("iterations") is not None:
            line += f"  iterations={times['iterations']}"
        if task.get("error"):
            line += f"  {task['error'].get('type')}: {task['error'].get('message')}"
        print(line)
        for attempt in times.get("attempt_log") or []:
            if attempt.get("error"):
                print(f"      attempt {attempt['attempt']}: {attempt['error'].get('type')}: "
                      f"{attempt['error'].get('message')}")
    for approval in view.get("approvals") or []:
        print(f"  waiting: {approval['task_id']} for {approval.get('approver')}")
    if view.get("error"):
        print(f"error: {view['error'].get('type')}: {view['error'].get('message')}")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Adds `runs` and `status` to the `loopline` parser's subcommands."""
    p = sub.add_parser("runs", help="list runs, newest first, of a running `loopline dev` (or a deployed API)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--status", help="only runs in this status (RUNNING, PAUSED, COMPENSATING, COMPLETED, FAILED, "
                                    "CANCELLED)")
    p.add_argument("--workflow", help="only runs of this workflow id")
    p.add_argument("--since", help="only runs created at or after this ISO-8601 time (UTC if no offset)")
    p.add_argument("--until", help="only runs created before this ISO-8601 time")
    p.add_argument("--limit", type=int, help="runs per page (the API's default: 50, at most 200)")
    p.add_argument("--cursor", help="the next page, as the previous one printed it")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer on one line")
    p.add_argument("--url", default=DEFAULT_URL, help="the API's base URL")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("status", help="one run: its tasks, their times, attempts and errors",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="print GET /runs/{id}'s JSON on one line")
    p.add_argument("--url", default=DEFAULT_URL, help="the API's base URL")
    p.set_defaults(func=cmd_status)
