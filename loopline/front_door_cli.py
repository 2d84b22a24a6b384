"""Seed 000's commands against a running `loopline dev` (or a deployed API): `loopline submit NAME|FILE`
starts a registered workflow by name (a FILE is registered first, if it is not already) and prints
the seed's answer; `loopline resume --token T --decision APPROVED|DENIED` decides an approval by its
link. (`loopline status ID` is the run's status as it always was: a seed's workflow id is a run id.)
Exit 0 when answered, 2 when refused, unreadable or no API answers. docs/api.md has the routes."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode

from .client import api_call

EXIT_OK, EXIT_REFUSED = 0, 2
_WORKFLOW_FILE = (".yaml", ".yml", ".json")


def _refused(status: int, body: Any) -> int:
    error = body.get("error") if isinstance(body, dict) else body
    print(f"loopline: {error} (HTTP {status})", file=sys.stderr, flush=True)
    for line in (body.get("diagnostics") or body.get("differences") or []) if isinstance(body, dict) else []:
        print(f"  {line}", file=sys.stderr, flush=True)
    return EXIT_REFUSED


def _is_file(target: str) -> bool:
    """A FILE when it names one or looks like one (so a missing file is said so, not "no workflow")."""
    return Path(target).exists() or target.endswith(_WORKFLOW_FILE) or "/" in target


def _register(url: str, path: str) -> tuple[int, Any]:
    """Register FILE (an idempotent 200 when the same content is registered): its ID@VERSION, or the refusal."""
    from .cli_files import load_plan, read_workflow

    text = read_workflow(path)
    load_plan(path, text=text)  # FILE:LINE:COL errors, exit 2, before anything is sent
    status, body = api_call("POST", f"{url}/workflows", {"workflow": text})
    if status >= 400:
        return status, body
    return status, f"{body['workflow_id']}@{body['version']}"


def cmd_submit(args: argparse.Namespace) -> int:
    from .cli_files import parse_input

    url = args.url.rstrip("/")
    inputs = parse_input(args.input)  # a usage error (exit 2) before anything is sent
    name = args.target
    if _is_file(args.target):
        status, registered = _register(url, args.target)
        if status >= 400:
            return _refused(status, registered)
        name = registered
    status, body = api_call("POST", f"{url}/workflow/start/{quote(name, safe='@')}",
                            {"input": inputs} if inputs is not None else None)
    if status >= 400:
        return _refused(status, body)
    if args.json:
        args.write_stdout(json.dumps(body, separators=(",", ":")))
    else:
        print(json.dumps(body, indent=2))
    return EXIT_OK


def cmd_resume(args: argparse.Namespace, by_run: Callable[[argparse.Namespace], int]) -> int:
    """`resume RUN_ID` resumes a paused run (``by_run``, as before); `resume --token T --decision D`
    decides the approval whose link's token is T."""
    from .cli_files import UsageError

    if args.token is None and args.decision is None:
        if not args.run_id:
            raise UsageError("give a paused run's id, or --token and --decision to decide an approval")
        return by_run(args)
    if args.run_id or args.reason:
        raise UsageError("--token and --decision decide an approval: give no run id and no --reason with them")
    if not args.token or not args.decision:
        raise UsageError("give both --token and --decision")
    query = urlencode({"token": args.token, "decision": args.decision})
    status, body = api_call("POST", f"{args.url.rstrip('/')}/workflow/resume?{query}",
                            {"comments": args.comments} if args.comments else None)
    if status >= 400:
        return _refused(status, body)
    print(json.dumps(body, indent=2))
    return EXIT_OK


# A link's token is base64url, so one in 64 starts with "-", which argparse would take for an option
# ("--token: expected one argument"); `--token=VALUE` is never mistaken, so the CLI glues it before parsing.
VALUE_OPTIONS = ("--token",)
_OPTION = re.compile(r"-h|--[a-z][a-z-]*(=.*)?", re.DOTALL)  # a 43-character token never reads like this


def glued_values(argv: list[str]) -> list[str]:
    """``argv`` with each ``--token VALUE`` written ``--token=VALUE``, unless VALUE reads as the next
    option (``--token --decision D``: the token was left out, and argparse should say so)."""
    out: list[str] = []
    waiting = False
    for arg in argv:
        if waiting and not _OPTION.fullmatch(arg):
            out[-1] = f"{out[-1]}={arg}"
            waiting = False
            continue
        out.append(arg)
        waiting = arg in VALUE_OPTIONS
    return out


def add_resume_options(parser: argparse.ArgumentParser, by_run: Callable[[argparse.Namespace], int]) -> None:
    """`loopline resume`'s way to decide an approval, beside resuming a paused run by its id."""
    parser.add_argument("--token", help="decide the approval whose link has this token (instead of a run id)")
    parser.add_argument("--decision", choices=["APPROVED", "DENIED"], help="with --token: DENIED is REJECTED")
    parser.add_argument("--comments", help="with --token: a comment recorded with the decision")
    parser.set_defaults(func=lambda args: cmd_resume(args, by_run))


def add_commands(sub: Any, default_url: str) -> None:
    """Adds `submit` to the `loopline` parser's subcommands."""
    p = sub.add_parser("submit", help="start a registered workflow by name, or a workflow FILE (registered first), "
                                      "on a running `loopline dev` (or a deployed API)")
    p.add_argument("target", metavar="NAME|FILE", help="a registered workflow's id (ID or ID@VERSION), or a file")
    p.add_argument("--input", help="the run's input: JSON text or @file")
    p.add_argument("--json", action="store_true", help="print the API's answer on one line")
    p.add_argument("--url", default=default_url, help="the API's base URL")
    p.set_defaults(func=cmd_submit)
