"""Running a workflow from the CLI, and the dev server: both on the embedded stack or in local mode."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from infra.clock import ManualClock
from infra.ports import Clock
from loopline.dev_routes import DEV_FUNCTIONS, dev_answer, dev_routes
from statemachine.plan import Plan

TERMINAL_RUN = ("COMPLETED", "FAILED", "CANCELLED")


class _Progress:
    """Prints task status changes and new approval/callback links to stderr (with ``--json`` too: the
    contract keeps stdout for the JSON line alone, and logs and progress go to stderr)."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.seen: dict[str, str] = {}
        self.links: set[str] = set()

    def show(self, view: dict[str, Any]) -> None:
        for task_id, task in view["tasks"].items():
            if self.seen.get(task_id, "PENDING") != task["status"]:
                self.seen[task_id] = task["status"]
                self.log(f"  {task_id}: {task['status']}")
        for entry in view.get("approvals", []) + view.get("callbacks", []):
            if entry["url"] not in self.links:
                self.links.add(entry["url"])
                kind = "approval" if entry in view.get("approvals", []) else "callback"
                self.log(f"{kind} waiting: task '{entry['task_id']}': {entry['url']}")


def run_workflow(plan: Plan, inputs: dict | None, local: bool, timeout: float | None,
                 log: Callable[[str], None], register: list[Plan] | None = None,
                 live: bool = False, state_dir: Path | None = None) -> dict[str, Any]:
    """``live``: redraw a progress line on stderr (a terminal's), the other lines printed above it.
    ``state_dir``: local mode's state directory (None: in memory)."""
    from infra.service import unregistered_refs
    from loopline.progress import LiveLine, describe

    line = LiveLine(sys.stderr) if live else None
    if line is not None:
        log = line.note
    host = _LocalModeHost(log, state_dir) if local else _EmbeddedHost(log)
    try:
        for child in register or []:
            host.register(child)
        missing = host.call(lambda engine: unregistered_refs(engine, plan))
        if missing:
            raise UnregisteredWorkflow(missing)
        run_id = host.start(plan, inputs)
        where = "embedded AWS emulation" if not local else f"local mode, state in {state_dir}" if state_dir \
            else "local mode"
        log(f"run {run_id} started ({where})")
        progress = _Progress(log)
        state: dict[str, Any] = {"view": None, "checked": 0.0, "next_view": 0.0}

        def finished() -> bool:
            # The host sleeps while nothing happens: a look put off here asks to be woken for it.
            now = time.monotonic()
            if now - state["checked"] < 0.1:
                host.wake_in(0.1 - (now - state["checked"]), "look")
                return False
            state["checked"] = now
            status = host.call(lambda engine: engine.store.get_run(run_id).status)  # one read
            if status in TERMINAL_RUN or now >= state["next_view"]:
                state["view"] = host.describe(run_id)
                progress.show(state["view"])
                if line is not None:
                    records = host.call(lambda engine: engine.store.list_tasks(run_id))
                    line.show(describe(plan, state["view"], records))
                # Describing reads every task, which a long run (a 2,000-task chain) makes slow and
                # the run cannot advance meanwhile: keep it to about a tenth of the time.
                state["next_view"] = time.monotonic() + max(0.1, 10 * (time.monotonic() - now))
                state["shown"] = True
            elif state.get("shown"):  # something moved since the last view: show it in time
                state["shown"] = False
                host.wake_in(state["next_view"] - now, "view")
            return status in TERMINAL_RUN

        ended = host.run_until(finished, timeout if timeout is not None else float("inf"))
        state["view"] = host.describe(run_id)
        if not ended:
            log(f"run {run_id} did not finish within {timeout:g}s; it stays {state['view']['status']}")
        return state["view"]
    finally:
        if line is not None:
            line.close()
        host.stop()


class UnregisteredWorkflow(Exception):
    def __init__(self, refs: list[str]):
        super().__init__(f"workflow_ref '{refs[0]}' is not registered: pass its file with --register")


class _Host:
    def register(self, plan: Plan) -> None:
        self.call(lambda engine: engine.register_workflow(plan))


class _EmbeddedHost(_Host):
    def __init__(self, log):
        from infra.wiring import get_engine
        from loopline.embedded.runtime import EmbeddedAws, LocalRuntime

        self.aws = EmbeddedAws()
        self.runtime = LocalRuntime(self.aws, log=log)
        self.runtime.start_gateway(port=0)
        self.engine = get_engine
        self.lock = self.runtime.lock

    def call(self, action):
        with self.lock:
            return action(self.engine())

    def start(self, plan, inputs):
        with self.lock:
            return self.engine().start_run(plan, inputs)

    def describe(self, run_id):
        with self.lock:
            return self.engine().describe_run(run_id)

    def run_until(self, done, timeout):
        return self.runtime.run_until(done, timeout)

    def wake_in(self, seconds, slot):
        self.runtime.doorbell.ring_in(seconds, slot)

    def stop(self):
        self.runtime.stop()
        self.aws.stop()


class _LocalModeHost(_Host):
    """Local mode and the API in front of it (``with_dev_routes``: also the dev server's own routes)."""

    def __init__(self, log, state: Path | None = None, port: int = 0, allow_hosts: tuple[str, ...] = (),
                 clock: Clock | None = None, with_dev_routes: bool = False):
        from loopline.embedded.concurrency import routed_stdout
        from loopline.embedded.gateway import LocalGateway
        from loopline.embedded.provision import handler_of, powertools_settings, routes_from_template
        from loopline.embedded.runtime import LOCAL_ENV, LambdaContext, lambda_stdout
        from loopline.memory.local_mode import LocalMode

        # The worker's side (pumping messages, this command's own reads) and the API's side hold
        # locks of their own, as the embedded stack runs its functions side by side: the in-memory
        # store and queues are thread-safe, so the API answers while the worker runs a task.
        self.lock = threading.RLock()
        api_lock = threading.Lock()  # one API invocation at a time, as one warm container
        # As on the embedded stack: this server's run views carry the live links (the local contract).
        os.environ["LOOPLINE_LINKS_IN_VIEWS"] = "true"
        os.environ["LOOPLINE_CONSOLE_SIGN_IN"] = "none"  # no Cognito here: sign-in leads to the console
        # The api handler's Powertools settings as the embedded default gives them (the template's, made
        # quiet): without the template's metrics namespace every request would end in a 502, its
        # decision applied but its answer lost. Set before the handler's module makes its Metrics.
        routes = routes_from_template()
        api_functions = {route.function for route in routes}
        for function_lid in sorted(api_functions):
            os.environ.update(powertools_settings(function_lid))
        os.environ.update({k: v for k, v in LOCAL_ENV.items() if k.startswith("POWERTOOLS")})
        handlers = {lid: handler_of(lid) for lid in api_functions}  # the API's, the console's

        def invoke(function_id: str, event: dict) -> Any:
            if function_id in DEV_FUNCTIONS:
                return dev_answer(function_id, event, self.mode.clock, self.mode.doorbell, self.mode.metrics)
            module, _, name = handlers[function_id].rpartition(".")
            lambda_handler = getattr(importlib.import_module(module), name)
            try:
                with api_lock, lambda_stdout() as sink, routed_stdout(sink):
                    return lambda_handler(event, LambdaContext(function_name=function_id))
            finally:
                if hasattr(self, "mode"):  # (not before the gateway's first request can reach it)
                    self.mode.doorbell.ring()  # the request may have changed the run: look again

        self.gateway = LocalGateway((*routes, *dev_routes()) if with_dev_routes else routes, invoke, port=port,
                                    allow_hosts=allow_hosts)
        self.gateway.start()
        # The lease of a task run in the worker, as LOOPLINE_LEASE_SECONDS sets it for a deployed worker.
        lease = float(os.environ.get("LOOPLINE_LEASE_SECONDS", "60"))
        self.mode = LocalMode(clock=clock, public_url=self.gateway.url, lease_seconds=lease, state=state)

    def call(self, action):
        with self.lock:
            return action(self.mode.engine)

    def start(self, plan, inputs):
        with self.lock:
            return self.mode.engine.start_run(plan, inputs)

    def describe(self, run_id):
        with self.lock:
            return self.mode.engine.describe_run(run_id)

    def run_until(self, done, timeout):
        # LocalMode.run_until, with this host's lock held while pumping but not while asleep.
        deadline = time.monotonic() + timeout
        while True:
            self.mode.doorbell.arm()
            with self.lock:
                if done():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return done()
                handled = self.mode.pump_once()
            if not handled:
                self.mode.sleep(left)

    def wake_in(self, seconds, slot):
        self.mode.doorbell.ring_in(seconds, slot)

    def stop(self):
        self.gateway.stop()
        self.mode.close()


def serve_dev(port: int, movable_clock: bool, log: Callable[[str], None], allow_hosts: tuple[str, ...] = (),
              local: bool = False, state: Path | None = None) -> None:
    from infra.clock import ManualClock, SystemClock

    clock: Clock = ManualClock() if movable_clock else SystemClock()
    if local and movable_clock and state is not None:
        from loopline.kept_clock import kept_clock

        clock = kept_clock(state)  # a restart on this directory goes on from the moved time
    if local:
        _serve_local(port, clock, log, allow_hosts, state)
        return
    from infra.wiring import get_engine
    from loopline.embedded.runtime import EmbeddedAws, LocalRuntime
    from loopline.run_log import watch_runs

    aws = EmbeddedAws()
    runtime = LocalRuntime(aws, clock=clock, log=log)
    runtime.start(http_port=port, allow_hosts=allow_hosts)
    unwatch = watch_runs(log, lambda run_id: get_engine().store.get_run(run_id))
    _banner(log, runtime.gateway.url, allow_hosts, movable_clock)
    stop = _stop_on_signals()
    try:
        stop.wait()
    finally:
        unwatch()
        runtime.stop()
        aws.stop()
        log("loopline dev: stopped")


def _banner(log: Callable[[str], None], url: str, allow_hosts: tuple[str, ...], movable_clock: bool) -> None:
    log(f"loopline dev: serving on {url} (Ctrl-C to stop)")
    log("  POST /runs  GET /runs[?status=&workflow=]  GET /runs/{id}  GET|POST /approvals/{token}  "
        "POST /callbacks/{token}  GET /openapi.json")
    log("  JSON bodies only (Content-Type: application/json); Host 127.0.0.1 or localhost"
        + "".join(f", {name}" for name in allow_hosts) + "; no other web page's origin")
    log(f"  the web console: {url}/console (docs/console.md)")
    if movable_clock:
        log("  POST /_dev/clock {\"seconds\": N} moves the clock forward")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _serve_local(port: int, clock: Clock, log: Callable[[str], None], allow_hosts: tuple[str, ...],
                 state: Path | None) -> None:
    """`loopline dev --local`: local mode behind the same routes, pumped on a thread until a signal."""
    from loopline.run_log import watch_runs

    host = _LocalModeHost(log, state, port=port, allow_hosts=allow_hosts, clock=clock, with_dev_routes=True)
    unwatch = watch_runs(log, lambda run_id: host.mode.store.get_run(run_id))
    stop = _stop_on_signals()

    def pump() -> None:
        while not stop.is_set():
            try:
                host.run_until(stop.is_set, float("inf"))
            except Exception:  # a handler's error is reported and the pump goes on, as the embedded one does
                log("pump error:\n" + traceback.format_exc())
                stop.wait(0.5)

    thread = threading.Thread(target=pump, name="loopline-local-pump", daemon=True)
    thread.start()
    _banner(log, host.gateway.url, allow_hosts, isinstance(clock, ManualClock))
    log(f"  local mode, state in {state}" if state else "  local mode, in memory (gone when it stops)")
    try:
        stop.wait()
    finally:
        host.mode.doorbell.ring()  # the pump, asleep, sees it is stopping
        thread.join(timeout=10)
        unwatch()
        host.stop()
        log("loopline dev: stopped")
