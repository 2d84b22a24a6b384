"""`loopline migrate RUN --to ID@VERSION [--dry-run] [--reason R]` and `loopline migrate --all-of ID@VERSION --to
...`: move a running run (or every run of a version not ended) to another version of its workflow, through a
running `loopline dev` or a deployed API (docs/versions.md). It prints the migration's report: what happens to
each task, or each task that blocks it and why. Exit 0 when allowed (a dry run, or queued), 2 when refused."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from .client import api_call

EXIT_OK, EXIT_REFUSED = 0, 2


def _print_one(answer: dict[str, Any], status: int) -> bool:
    """Print one run's report; True if it was allowed."""
    lines = answer.get("lines") or []
    if status >= 400 and not lines:  # not a refusal of the migration: a bad request, an unknown run or version
        print(f"loopline: {answer.get('error')} (HTTP {status})", file=sys.stderr, flush=True)
        return False
    print(f"run {answer.get('run_id')}: " + lines[0])
    for line in lines[1:]:
        print(line)
    if status >= 400 or not answer.get("allowed", True):
        return False
    if answer.get("changed"):
        print(f"  queued: the worker moves the run (epoch {answer.get('epoch')})")
    elif answer.get("dry_run"):
        print("  dry run: nothing changed")
    return True


def cmd_migrate(args: argparse.Namespace) -> int:
    if (args.run_id is None) == (args.all_of is None):
        print("loopline: name one run (loopline migrate RUN --to ID@VERSION) or --all-of ID@VERSION",
              file=sys.stderr)
        return EXIT_REFUSED
    base = args.url.rstrip("/")
    body: dict[str, Any] = {"to": args.to, "dry_run": args.dry_run}
    if args.reason:
        body["reason"] = args.reason
    if args.run_id is not None:
        status, answer = api_call("POST", f"{base}/runs/{quote(args.run_id, safe='')}/migrate", body)
        answers = [(status, answer)]
    else:
        workflow_id, _, version = args.all_of.partition("@")
        status, bulk = api_call("POST", f"{base}/workflows/{quote(workflow_id, safe='')}/versions/"
                                        f"{quote(version or 'latest', safe='')}/migrate", body)
        if status >= 400:
            answers = [(status, bulk)]
        else:
            # Each run as the single route would answer it: 409 for a refusal.
            answers = [(status if run["allowed"] else 409, run) for run in bulk["runs"]]
            if not answers:
                print(f"no run of {args.all_of} to migrate")
    if args.json:
        print(json.dumps([a for _, a in answers] if args.all_of else answers[0][1], separators=(",", ":")))
        return EXIT_OK if all(s < 400 for s, _ in answers) else EXIT_REFUSED
    allowed = [_print_one(answer, status) for status, answer in answers]
    return EXIT_OK if all(allowed) else EXIT_REFUSED


def add_command(sub: Any, url: str) -> None:
    p = sub.add_parser("migrate", help="move a running run (or every run of a version) to another version of its "
                                       "workflow; exit 2 if refused (docs/versions.md)")
    p.add_argument("run_id", nargs="?", help="the run to move (or --all-of)")
    p.add_argument("--to", required=True, metavar="ID@VERSION", help="the version to move to")
    p.add_argument("--all-of", metavar="ID@VERSION", help="every run of this version that has not ended")
    p.add_argument("--dry-run", action="store_true", help="print what it would do, change nothing")
    p.add_argument("--reason", help="why: kept in the audit log and the run's history")
    p.add_argument("--json", action="store_true", help="print the API's answer as JSON on one line")
    p.add_argument("--url", default=url, help="the API's base URL")
    p.set_defaults(func=cmd_migrate)
