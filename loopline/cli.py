"""The `loopline` command: validate, run, dev, compile, graph.

Exit codes (the contract): 0 run COMPLETED / workflow valid; 1 run FAILED or
CANCELLED; 2 invalid workflow, invalid input or bad usage. No traceback
reaches the user: unexpected errors print one line and exit 3. A reader that
closes our stdout early (`loopline compile f.yaml | head -c 10`) is no error of
ours: the command stops quietly with 141, as a tool killed by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from statemachine.versions import BreakingChange, VersionTaken

from . import front_door_cli, run_commands
from .cli_files import UsageError, load_plan, parse_input
from .client import ApiUnreachable
from .history_cli import HistoryRefused
from .reading import port, positive_seconds
from .running import UnregisteredWorkflow
from .workflows_cli import WorkflowsRefused

EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_STDOUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for `cat big | head`


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------ commands


def cmd_validate(args) -> int:
    for path in args.files:
        load_plan(path, report_to=sys.stdout)
    if not args.quiet:
        print("ok" if len(args.files) == 1 else f"{len(args.files)} workflows ok")
    return EXIT_OK


def cmd_compile(args) -> int:
    plan = load_plan(args.file)
    print(json.dumps(json.loads(plan.to_json()), indent=2))
    return EXIT_OK


def cmd_graph(args) -> int:
    plan = load_plan(args.file)
    print("digraph {")
    for node in plan.nodes.values():
        shape = "diamond" if node.kind == "condition" else "box"
        print(f'  "{node.id}" [shape={shape}, label="{node.id}\\n{node.type or node.kind}"];')
        for dep in node.deps:
            print(f'  "{dep}" -> "{node.id}";')
    print("}")
    return EXIT_OK


def cmd_run(args) -> int:
    from statemachine.inputs import InputError, prepare_inputs

    from .running import run_workflow

    plan = load_plan(args.file)
    inputs = parse_input(args.input)
    try:
        prepare_inputs(plan, inputs)  # fail fast (exit 2) before starting any stack
    except InputError as error:
        raise UsageError(f"invalid input: {error}") from error
    children = [load_plan(path) for path in args.register or []]
    try:
        view = run_workflow(plan, inputs, local=args.local, timeout=args.timeout, log=_err,
                            register=children, live=not args.json and sys.stderr.isatty(),
                            state_dir=_state_dir(args))
    except InputError as error:  # what only the engine checks (the input's size)
        raise UsageError(f"invalid input: {error}") from error
    if args.json:
        keys = ("run_id", "status", "outputs", "error", "tasks")
        _write_stdout(json.dumps({k: view.get(k) for k in keys}, separators=(",", ":"), default=str))
    else:
        _print_summary(view)
    return EXIT_OK if view["status"] == "COMPLETED" else EXIT_RUN_FAILED


IN_MEMORY = ":memory:"


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", metavar="DIR",
                        help="with --local: the directory its state is kept in, a SQLite file that outlives the "
                             f"process (default: $LOOPLINE_HOME or .loopline); {IN_MEMORY} keeps it in memory")


def _state_dir(args) -> Path | None:
    """Local mode's state directory; None: in memory (or not local mode)."""
    if not args.local:
        if args.state is not None:
            raise UsageError("--state goes with --local")
        return None
    if args.state == IN_MEMORY:
        return None
    return Path(args.state or os.environ.get("LOOPLINE_HOME") or ".loopline")


def cmd_dev(args) -> int:
    from .running import serve_dev

    state = _state_dir(args)
    if args.aws_endpoint and args.local:
        raise UsageError("--local and --aws-endpoint: choose one")
    if args.aws_endpoint:
        # The emulated AWS lives in another process (`loopline emulator`), so this one can be
        # killed at any moment and started again on the same state, as a Lambda would be.
        os.environ["LOOPLINE_AWS_ENDPOINT"] = args.aws_endpoint
    from .kept_clock import ClockFileError

    try:
        serve_dev(port=args.port, movable_clock=args.movable_clock, log=_err,
                  allow_hosts=tuple(args.allow_host or ()), local=args.local, state=state)
    except ClockFileError as error:
        raise UsageError(str(error)) from error
    return EXIT_OK


def cmd_emulator(args) -> int:
    """moto as a server on 127.0.0.1: the "cloud" that outlives `loopline dev --aws-endpoint`."""
    import threading

    from loopline.embedded.moto_server import GuardedMotoServer

    # Closed to web browsers (Origin, Sec-Fetch-*, Host checked): see loopline/embedded/moto_server.py.
    server = GuardedMotoServer(port=args.port).start()
    _err(f"loopline emulator: AWS emulated on http://127.0.0.1:{args.port} (Ctrl-C to stop); then\n"
         f"  loopline dev --aws-endpoint http://127.0.0.1:{args.port}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def cmd_approvals(args) -> int:
    from urllib.parse import urlencode

    from .client import api_call

    query = urlencode({k: v for k, v in (("run", args.run), ("approver", args.approver)) if v})
    status, body = api_call("GET", f"{args.url}/approvals" + (f"?{query}" if query else ""))
    if status >= 400:
        _err(f"loopline: {body.get('error') if isinstance(body, dict) else body}")
        return EXIT_INVALID
    for entry in body["approvals"]:
        print(f"{entry['run_id']}  {entry['task_id']:<24} {entry['approver']:<28} {entry.get('deadline') or '-'}")
        print(f"    {entry['title']}\n    {entry['url']}")
    if not body["approvals"]:
        print("no approvals waiting")
    return EXIT_OK


def cmd_decide(args) -> int:
    from .client import api_call

    body = {"decision": args.decision, "comments": args.comments}
    if args.run or args.task:
        if not (args.run and args.task) or args.link:
            raise UsageError("give a link, or both --run and --task")
        status, reply = api_call("POST", f"{args.url}/runs/{args.run}/approvals/{args.task}",
                                 {**body, "approver": args.approver})
    elif args.link:
        link = args.link if "://" in args.link else f"{args.url}/approvals/{args.link}"
        status, reply = api_call("POST", link, {**body, **({"approver": args.approver} if args.approver else {})})
    else:
        raise UsageError("give a link, or both --run and --task")
    print(json.dumps(reply, indent=2))
    return EXIT_OK if status < 400 else EXIT_INVALID


def cmd_cancel(args) -> int:
    from .client import api_call

    sent = {"reason": args.reason} if args.reason else None
    if args.verb == "rewind":
        sent = {"to": args.to, **(sent or {}), **({"compensate": True} if args.compensate else {}),
                **({"iteration": args.iteration} if args.iteration is not None else {})}
    status, body = api_call("POST", f"{args.url}/runs/{args.run_id}/{args.verb}", sent)
    print(json.dumps(body, indent=2))
    if status >= 400 and isinstance(body, dict) and body.get("error"):
        _err(f"loopline: {body['error']}")  # e.g. 409: the run is not in a state that allows it
    return EXIT_OK if status < 400 else EXIT_INVALID


def _print_summary(view: dict[str, Any]) -> None:
    print(f"run {view['run_id']}: {view['status']}")
    for task_id, task in view["tasks"].items():
        line = f"  {task_id:<24} {task['status']:<10} attempts={task['attempts']}"
        if task.get("error"):
            line += f"  {task['error'].get('type')}: {task['error'].get('message')}"
        print(line)
    if view.get("outputs") is not None:
        print("outputs: " + json.dumps(view["outputs"], default=str))
    if view.get("error"):
        print(f"error: {view['error'].get('type')}: {view['error'].get('message')}")


_REAL_STDOUT: int | None = None


def _write_stdout(text: str) -> None:
    fd = _REAL_STDOUT if _REAL_STDOUT is not None else sys.stdout.fileno()
    os.write(fd, (text + "\n").encode())


def _reserve_stdout() -> None:
    """For --json: anything else written to stdout (a library's print, a log) goes to stderr."""
    global _REAL_STDOUT
    sys.stdout.flush()
    _REAL_STDOUT = os.dup(1)
    os.dup2(2, 1)


def _stdout_closed() -> bool:
    """Whether our stdout is a pipe its reader closed. If so, it now points at /dev/null, so that
    the interpreter's last flush at exit has nowhere to fail (and prints nothing)."""
    import select

    fds = [fd for fd in (_REAL_STDOUT, 1) if fd is not None]
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLOUT)
    if not any(mask & select.POLLERR for _, mask in poller.poll(0)):
        return False
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)
    return True


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` says each option's default, unless there is none to say (None, off, or the help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _ShowDefaults)  # the subcommands' parsers too
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from infra.version import VERSION

    parser = _Parser(prog="loopline", description="A durable workflow engine.")
    parser.add_argument("--version", action="version", version=f"loopline {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check workflow files; errors as FILE:LINE:COL: message")
    p.add_argument("files", nargs="+")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="print the compiled execution plan as JSON")
    p.add_argument("file")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("graph", help="print the task graph in Graphviz dot")
    p.add_argument("file")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("run", help="run a workflow to its end on the embedded default (or --local)")
    p.add_argument("file")
    p.add_argument("--input", help="the run's input: JSON text or @file")
    p.add_argument("--json", action="store_true", help="print only the run's JSON on stdout")
    p.add_argument("--local", action="store_true",
                   help="local adapters instead of the emulated AWS stack, kept in --state (docs/local-state.md)")
    _state_option(p)
    p.add_argument("--timeout", type=positive_seconds, default=None,
                   help="give up after this many seconds (default: none)")
    p.add_argument("--register", action="append", metavar="FILE",
                   help="register a workflow first (for sub_workflows); may repeat")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("approvals", help="approvals waiting for a decision (a running `loopline dev` or an API)")
    p.add_argument("--run", help="only this run's")
    p.add_argument("--approver", help="only this approver's")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
    p.set_defaults(func=cmd_approvals)

    for verb, decision in (("approve", "APPROVED"), ("reject", "REJECTED")):
        p = sub.add_parser(verb, help=f"{verb} by a link (token or URL), or by --run and --task")
        p.add_argument("link", nargs="?", help="an approval link or its token")
        p.add_argument("--run", help="the run (with --task): decide in an approver's name")
        p.add_argument("--task", help="the approval's task id (with --run)")
        p.add_argument("--approver", help="in whose name (when several are asked)")
        p.add_argument("--comments", help="a comment recorded with the decision")
        p.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
        p.set_defaults(func=cmd_decide, decision=decision)

    for verb in ("cancel", "pause", "resume", "redrive"):
        what = ("resume a FAILED run from its failed tasks, keeping what completed (exit 2 if refused)"
                if verb == "redrive" else "resume a paused run, or decide an approval by --token and --decision"
                if verb == "resume" else f"{verb} a run")
        p = sub.add_parser(verb, help=f"{what}, of a running `loopline dev` (or a deployed API)")
        p.add_argument("run_id", nargs="?" if verb == "resume" else None)
        p.add_argument("--reason", help="why: kept in the audit log (GET /audit) and, for a cancel, the run's history")
        p.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
        p.set_defaults(func=cmd_cancel, verb=verb)
        if verb == "resume":
            front_door_cli.add_resume_options(p, cmd_cancel)  # seed 000's `resume --token T --decision D`

    front_door_cli.add_commands(sub, "http://127.0.0.1:8080")  # seed 000's `submit NAME|FILE`

    p = sub.add_parser("rewind", help="reopen a run (ended, RUNNING or PAUSED) from just before a task, which runs "
                                      "again with all that follows it (exit 2 if refused), of a running `loopline "
                                      "dev` (or a deployed API)")
    p.add_argument("run_id")
    p.add_argument("--to", required=True, metavar="TASK", help="the task to go back to")
    p.add_argument("--compensate", action="store_true",
                   help="first run the compensations of the discarded tasks that completed and declare one")
    p.add_argument("--iteration", type=int, metavar="N",
                   help="for a task of a loop's body: the iteration to reopen (default: the last one that ran)")
    p.add_argument("--reason", help="why: kept in the audit log (GET /audit) and the run's history")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
    p.set_defaults(func=cmd_cancel, verb="rewind")

    from .history_cli import cmd_history, cmd_logs

    p = sub.add_parser("history", help="a run's history: every change of the run and its tasks, with why")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="print the entries as one JSON document")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("logs", help="a run's transitions and what its tasks printed")
    p.add_argument("run_id")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
    p.set_defaults(func=cmd_logs)

    from .workflows_cli import add_command

    add_command(sub, "http://127.0.0.1:8080")  # workflows register/list/show/diff/deprecate

    from .migrate_cli import add_command as add_migrate

    add_migrate(sub, "http://127.0.0.1:8080")  # migrate RUN --to ID@VERSION (docs/versions.md)

    run_commands.add_commands(sub)  # runs, status

    p = sub.add_parser("dev", help="the local stack as a server on 127.0.0.1")
    p.add_argument("--port", type=port(0), default=8080, help="0: any free port (the URL is printed)")
    p.add_argument("--movable-clock", action="store_true",
                   help="run the engine on a clock that only POST /_dev/clock {\"seconds\": N} moves forward: "
                        "waits, timeouts, reminders, retries' backoff and the times recorded follow it "
                        "(docs/language.md)")
    p.add_argument("--local", action="store_true",
                   help="local mode instead of the emulated AWS stack, kept in --state (docs/local-state.md)")
    _state_option(p)
    p.add_argument("--aws-endpoint", metavar="URL",
                   help="use the AWS emulated at URL (`loopline emulator`, LocalStack) instead of moto in this "
                        "process: the state then survives this server being killed and started again")
    p.add_argument("--allow-host", action="append", metavar="NAME",
                   help="also answer requests for Host NAME (any port) or NAME:PORT, and from its origin "
                        "(a proxy or a hosts-file name in front of the server); may repeat. Without it only "
                        "127.0.0.1 and localhost with the server's port are answered")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("emulator", help="moto as a server on 127.0.0.1, for `loopline dev --aws-endpoint`")
    p.add_argument("--port", type=port(1), default=5055,  # a fixed port: `dev --aws-endpoint` is told it
                   help="the port to serve the emulated AWS on")
    p.set_defaults(func=cmd_emulator)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(front_door_cli.glued_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return EXIT_INVALID if exit_.code not in (0, None) else EXIT_OK
    if getattr(args, "json", False):
        _reserve_stdout()
    args.write_stdout = _write_stdout  # where a command's --json line goes (stdout, as reserved above)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe would print a warning
        return code
    except BrokenPipeError as error:
        if _stdout_closed():
            return EXIT_STDOUT_CLOSED
        return _internal_error(error)  # another pipe broke (a socket's): an error like any other
    except UsageError as error:
        _err(f"loopline: {error}")
        return EXIT_INVALID
    except (UnregisteredWorkflow, ApiUnreachable, HistoryRefused, WorkflowsRefused) as error:
        _err(f"loopline: {error}")
        return EXIT_INVALID
    except (VersionTaken, BreakingChange) as error:  # `run --register` in a local state that keeps versions
        _err(f"loopline: {error}")
        for line in error.differences if isinstance(error, VersionTaken) else [c.line() for c in error.report.breaking]:
            _err(f"  {line}")
        return EXIT_INVALID
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except KeyboardInterrupt:
        _err("loopline: interrupted")
        return 130
    except Exception as error:  # the last line of defence: one line, never a traceback
        return _internal_error(error)


def _internal_error(error: Exception) -> int:
    _err(f"loopline: internal error: {type(error).__name__}: {error}")
    if os.environ.get("LOOPLINE_DEBUG"):
        import traceback

        traceback.print_exc()
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
