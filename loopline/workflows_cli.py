"""`loopline workflows ...`: the registry of a running `loopline dev` (or a deployed API), and the
compatibility report between two versions (docs/versions.md). Exit 0 when answered, 2 when the API
refuses (a version taken, a breaking change, an unknown version) or the input is bad."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from .client import api_call

EXIT_OK, EXIT_REFUSED = 0, 2
_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(@[0-9A-Za-z.+-]+)?$")


class WorkflowsRefused(Exception):
    """Bad input or a refusal: one line (and the reasons under it), exit 2."""


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _answer(status: int, body: Any) -> int:
    print(json.dumps(body, indent=2))
    if status >= 400 and isinstance(body, dict):
        _err(f"loopline: {body.get('error')} (HTTP {status})")
        for line in body.get("differences") or [c["detail"] for c in (body.get("report") or {}).get("changes", [])
                                                 if c.get("impact") == "breaking"]:
            _err(f"  {line}")
    return EXIT_OK if status < 400 else EXIT_REFUSED


def cmd_workflows(args: argparse.Namespace) -> int:
    from .cli_files import inlined_file, load_plan

    url = args.url.rstrip("/")
    if args.action != "list" and not args.target:
        raise WorkflowsRefused(f"workflows {args.action} needs a {'file' if args.action == 'register' else 'workflow'}")
    if args.action == "register":
        inlined = inlined_file(args.target)  # the file's code files read into it
        load_plan(args.target, text=inlined)  # FILE:LINE:COL errors before anything is sent
        text = inlined.text
        body: dict[str, Any] = {"workflow": text}
        if args.allow_breaking:
            body["allow_breaking"] = True
        return _answer(*api_call("POST", f"{url}/workflows", body))
    if args.action == "list":
        return _answer(*api_call("GET", f"{url}/workflows"))
    if args.action == "show":
        return _answer(*api_call("GET", f"{url}/workflows/{quote(args.target, safe='@')}"))
    if args.action == "deprecate":
        workflow_id, _, version = args.target.partition("@")
        if not _REF.match(args.target) or not version or version == "latest":
            raise WorkflowsRefused("workflows deprecate needs ID@VERSION, e.g. order@1.0.0")
        return _answer(*api_call("POST", f"{url}/workflows/{workflow_id}/versions/{quote(version)}/deprecate",
                                 {"reason": args.reason} if args.reason else None))
    return _diff(args, url)


def _diff(args: argparse.Namespace, url: str) -> int:
    """Each side is a workflow file or a registered ID@VERSION: two versions of one registered workflow
    are compared by the API; anything else here, from the files and the plans the API shows."""
    from statemachine.compat import compare

    if not args.other:
        raise WorkflowsRefused("workflows diff needs two workflows: FILE or ID@VERSION, each")
    sides = [_side(args.target), _side(args.other)]
    if all(isinstance(s, str) for s in sides) and sides[0].partition("@")[0] == sides[1].partition("@")[0]:
        workflow_id = sides[0].partition("@")[0]
        versions = [side.partition("@")[2] or "latest" for side in sides]
        query = urlencode({"from": versions[0], "to": versions[1]})
        status, body = api_call("GET", f"{url}/workflows/{workflow_id}/diff?{query}")
        if status >= 400:
            return _answer(status, body)
        report = body
    else:
        plans = [_plan_of(side, url) for side in sides]
        report = compare(plans[0], plans[1]).to_json()
    if args.json:
        args.write_stdout(json.dumps(report, separators=(",", ":")))
        return EXIT_OK
    breaking = sum(1 for c in report["changes"] if c["impact"] == "breaking")
    print(f"{report['workflow_id']} {report['from']} -> {report['to']}: {len(report['changes'])} changes, "
          f"{breaking} breaking")
    for change in report["changes"]:
        print(f"  {change['impact']:<10}  {change['detail']}")
    return EXIT_OK


def _side(given: str) -> Any:
    """A compiled plan for a file, the reference itself for a registered workflow."""
    from .cli_files import load_plan

    if Path(given).is_file():
        return load_plan(given)
    if _REF.match(given):
        return given
    raise WorkflowsRefused(f"{given}: no such file, and not a workflow ID@VERSION")


def _plan_of(side: Any, url: str):
    from statemachine.plan import Plan

    if not isinstance(side, str):
        return side
    status, body = api_call("GET", f"{url}/workflows/{quote(side, safe='@')}")
    if status >= 400:
        raise WorkflowsRefused(f"{side}: {body.get('error') if isinstance(body, dict) else body} (HTTP {status})")
    return Plan.model_validate(body)


def add_command(sub: Any, url: str) -> None:
    p = sub.add_parser("workflows", help="the registry of a running `loopline dev` (or a deployed API), and the "
                                         "compatibility report between two versions (docs/versions.md)")
    p.add_argument("action", choices=["register", "list", "show", "diff", "deprecate"])
    p.add_argument("target", nargs="?", help="register: a workflow file; show: ID, ID@latest or ID@VERSION; "
                                             "deprecate: ID@VERSION; diff: the older side, FILE or ID@VERSION")
    p.add_argument("other", nargs="?", help="diff: the newer side, FILE or ID@VERSION")
    p.add_argument("--allow-breaking", action="store_true",
                   help="register: although it breaks the previous version without a higher major version "
                        "(kept in the version's record and the audit log)")
    p.add_argument("--reason", help="deprecate: why (kept with the version and in the audit log)")
    p.add_argument("--json", action="store_true", help="diff: print the report's JSON on one line")
    p.add_argument("--url", default=url, help="the API's base URL")
    p.set_defaults(func=cmd_workflows)
