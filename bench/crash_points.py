"""Crash-point enumeration (issue #5 item 1): crash before and after every AWS call of a run, restart, compare.

    .venv/bin/python bench/crash_points.py                 # every reference workflow
    .venv/bin/python bench/crash_points.py --only chain     # one of them
    .venv/bin/python bench/crash_points.py --store sqlite   # local mode on a state file (bench/crash_sqlite.py)

For each reference workflow: run it cleanly on the embedded default and count the AWS
calls the engine makes (the handlers' and the API's clients; the runtime's own pollers,
which stand for AWS, are not crashed). Then for every call k and both sides of it, run
it again with a crash there: a BaseException raised out of the process (nothing catches
it, as nothing runs after a Lambda dies), then a new runtime on the same emulated AWS,
the clock moved past the leases, and the run pumped to its end. The final run must equal
the clean one: status, outputs, and every task's status, output and attempts.
Prints how many crash points were tried and how many passed (and how many crashed: an "after"
whose operation raised is never reached, and that run is a clean one).

With ``--store sqlite`` an operation is a transaction on local mode's SQLite file instead, and the
new process opens the same file (bench/crash_sqlite.py says what is crashed and why there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.migration_scenario import V1 as MIGRATION_V1  # noqa: E402 - after the path is set
from bench.migration_scenario import MigrateFirst  # noqa: E402

# The do_while of the rewind_loop workflows: it counts the variable n up to 3 in three iterations (note, then inc,
# which exports it).
COUNTING_LOOP = """\
  control_flow:
    loops:
      - id: count
        type: do_while
        condition: "${variables.n < 3}"
        max_iterations: 6
        tasks:
          - {id: note, type: python, config: {code: "result = loop['index']"}}
          - id: inc
            type: python
            depends_on: [note]
            config: {code: "result = variables['n'] + 1"}
            outputs: [{name: n, value: "${response}", export: true}]
"""
# The for_each of the rewind_parallel workflows: three items, two iterations at a time; its body follows.
PARALLEL_EACH = """\
  control_flow:
    loops:
      - id: each
        items: [1, 2, 3]
        iterator: n
        parallel: true
        max_concurrent: 2
        tasks:
"""
WORKFLOWS = {
    "chain": """
workflow:
  metadata: {id: chain}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 1"}}
    - {id: c, type: python, depends_on: [b], config: {code: "result = tasks['b']['output'] * 10"}}
  outputs: {mappings: {c: "${tasks.c.output}"}}
""",
    "fan_out_in": """
workflow:
  metadata: {id: fan}
  tasks:
    - {id: a, type: python, config: {code: "result = 2"}}
    - {id: x, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 1"}}
    - {id: y, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 2"}}
    - {id: z, type: python, depends_on: [x, y], config: {code: "result = tasks['x']['output'] * tasks['y']['output']"}}
  outputs: {mappings: {z: "${tasks.z.output}"}}
""",
    "condition": """
workflow:
  metadata: {id: cond}
  tasks:
    - {id: a, type: python, config: {code: "result = 7"}}
    - {id: join, type: python, depends_on: [hi, lo], config: {code: "result = 'joined'"}}
  control_flow:
    conditions:
      - id: big
        if: "${tasks.a.output > 5}"
        then: [{id: hi, type: python, config: {code: "result = 'high'"}}]
        else: [{id: lo, type: python, config: {code: "result = 'low'"}}]
""",
    "loop": """
workflow:
  metadata: {id: loop}
  control_flow:
    loops:
      - id: each
        items: [1, 2]
        tasks:
          - {id: sq, type: python, config: {code: "result = item * item"}}
""",
    "parallel_loop": """
workflow:
  metadata: {id: parallel_loop}
  control_flow:
    loops:
      - id: each
        items: [1, 2, 3]
        parallel: true
        max_concurrent: 2
        tasks:
          - {id: sq, type: python, config: {code: "result = item * item"}}
""",
    # A for_each of one task that ends at its claim (a 0s wait): each iteration is one write (its task's claim,
    # which keeps the iteration's item, and its end: docs/durability.md rules 12 and 16), carried on.
    "for_each_wait0": """
workflow:
  metadata: {id: for_each_wait0}
  control_flow:
    loops:
      - id: each
        items: [1, 2, 3, 4, 5]
        parallel: true
        max_concurrent: 2
        tasks:
          - {id: tick, type: wait, config: {duration: 0s}, outputs: [{name: n, value: "${loop.item}"}]}
""",
    "retry": """
workflow:
  metadata: {id: retry}
  tasks:
    - id: flaky
      type: python
      retry: {max_attempts: 2, delay: 1s}
      config: {code: "raise ValueError('always')"}
""",
    "circuit": """
workflow:
  metadata: {id: circuit}
  tasks:
    # Opens at the first failure; the retry (1 s later) is the half-open trial, and fails: open again.
    # After the wait, the next task's attempt is the trial, and closes it: each run leaves it closed, and
    # no decision hangs on how far the harness moves the clock (open_for has always passed).
    - id: failing
      type: python
      retry: {max_attempts: 2, delay: 1s}
      circuit_breaker: {name: crash_points, failures: 1, window: 1d, open_for: 1ms}
      config: {code: "raise ConnectionError('down')"}
    - {id: pause, type: wait, depends_on: [failing], trigger_rule: all_done, config: {duration: 1s}}
    - id: recovering
      type: python
      depends_on: [pause]
      circuit_breaker: {name: crash_points, failures: 1, window: 1d, open_for: 1ms}
      config: {code: "result = 'back'"}
""",
    "timer": """
workflow:
  metadata: {id: timer}
  tasks:
    - {id: pause, type: wait, config: {duration: 2h}}
    - {id: after, type: python, depends_on: [pause], config: {code: "result = 'woke'"}}
""",
    "branch_timeout": """
workflow:
  metadata: {id: branch_timeout}
  config: {parallelism: {branch_timeout: 1h}}
  tasks:
    - {id: after, type: python, depends_on: [fan], config: {code: "result = 'after'"}}
  control_flow:
    parallel:
      - id: fan
        branches:
          - {name: quick, tasks: [{id: q, type: python, config: {code: "result = 'q'"}}]}
          - {name: slow, tasks: [{id: s, type: callback}]}  # never called back: only its branch's time ends it
        aggregation: {strategy: merge}
""",
    "approval": """
workflow:
  metadata: {id: approval}
  tasks:
    - {id: ask, type: approval, config: {title: "ok?", approvers: [a@example.com]}}
    - {id: after, type: python, depends_on: [ask], config: {code: "result = tasks['ask']['output']['decision']"}}
""",
    "compensation": """
workflow:
  metadata: {id: saga}
  tasks:
    - {id: book, type: python, config: {code: "result = 'booked'"}, compensation: {task_id: unbook}}
    - {id: pay, type: python, depends_on: [book], config: {code: "raise RuntimeError('declined')"}}
    - {id: unbook, type: python, config: {code: "result = 'unbooked'"}}
""",
    # A 100 KB output: it goes through the S3 claim check, so crashes fall around S3 puts too.
    "large_payload": """
workflow:
  metadata: {id: large}
  tasks:
    - {id: a, type: python, config: {code: "result = 'z' * 100000"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = len(tasks['a']['output'])"}}
  outputs: {mappings: {b: "${tasks.b.output}"}}
""",
    # An llm task whose model (the local stand-in) calls a tool task: the loop runs inside the attempt.
    "llm_tools": """
workflow:
  metadata: {id: llm_tools}
  tasks:
    - {id: a, type: python, config: {code: "result = 2"}}
    - id: agent
      type: llm
      config:
        prompt: "Double 21"
        tools:
          - task: double
            parameters: {type: object, properties: {n: {type: integer, default: 21}}}
    - {id: double, type: python, depends_on: [a], config: {code: "result = args['n'] * tasks['a']['output']"}}
  outputs: {mappings: {doubled: "${tasks.agent.output.tool_calls[0].result}"}}
""",
    # A run waiting on an approval, migrated to another version, finished there (bench/migration_scenario.py).
    "migration": MIGRATION_V1,
    # Rewind (issue #13 item 4): the run ends, is rewound to b with its compensation first (the API's
    # call crashable too, and asked again after a crash as a client would), and ends again.
    "rewind": """
workflow:
  metadata: {id: rewind}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = 2"}, compensation: {task_id: undo_b}}
    - {id: c, type: python, depends_on: [a, b], config: {code: "result = tasks['b']['output'] * 10"}}
    - {id: undo_b, type: python, config: {code: "result = 'undone'"}}
  outputs: {mappings: {c: "${tasks.c.output}"}}
""",
    # The graph form (docs/graph-form.md) with a cycle: one do_while loop running one node per step,
    # each node merging its result into the shared context (an export), a router exporting the next node.
    "graph_cycle": """
graph:
  id: cycle
  entry: a
  context: {n: 0}
  nodes:
    - {id: a, type: python, config: {code: "result = {'n': context['n'] + 1}"}}
    - {id: b, type: python, config: {code: "result = {'seen': context['n']}"}}
  edges:
    - {source: a, target: b}
    - {source: b, target: a, condition: "${context.n < 2}"}
""",
    # A do_while loop whose condition reads what its body exports. Two body tasks start each iteration:
    # the first runs in the invocation that started it, the second (the exporter) through the queue, so a
    # crash there lets the later iteration export before the earlier one's end is decided again.
    "do_while_exports": """
workflow:
  metadata: {id: do_while_exports}
  variables: [{name: n, type: integer, default: 0}]
  control_flow:
    loops:
      - id: count
        type: do_while
        condition: "${variables.n < 2}"
        max_iterations: 5
        tasks:
          - {id: note, type: python, config: {code: "result = loop['index']"}}
          - id: inc
            type: python
            config: {code: "result = variables['n'] + 1"}
            outputs: [{name: n, value: "${response}", export: true}]
""",
    # A task skipped by its when in the invocation that ran its one dependency (carried on, carry_on.py):
    # a crash right after the skip is written must not leave its dependents waiting.
    "skipped_by_when": """
workflow:
  metadata: {id: skipped_by_when}
  tasks:
    - {id: due, type: wait, config: {duration: 0s}}
    - {id: maybe, type: python, depends_on: [due], when: "${1 > 2}", config: {code: "result = 'ran'"}}
    - {id: after, type: python, depends_on: [maybe], trigger_rule: all_done, config: {code: "result = 'after'"}}
""",
    # Rewind of a moving run: rewound to b while it waits (RUNNING, the wait's timer set), so the rewind
    # pauses it, resets b, the wait and c, fences the wait's timer off, and the run waits again and ends.
    "rewind_moving": """
workflow:
  metadata: {id: rewind_moving}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = 2"}}
    - {id: hold, type: wait, depends_on: [b], config: {duration: 2m}}
    - {id: c, type: python, depends_on: [a, hold], config: {code: "result = tasks['b']['output'] * 10"}}
  outputs: {mappings: {c: "${tasks.c.output}"}}
""",
    # Rewind of a moving run with its compensations first: rewound to b while it waits, so the rewind pauses
    # it with undo_b as its end step, runs undo_b while it holds the run, then resets b, the wait and c and
    # reopens; the run waits again and ends. undo_b counts its runs in a variable (variables are not
    # rewound) that c adds to its output: 21 if it ran once before c ran again, 20 if never, 22 if twice.
    "rewind_moving_compensate": """
workflow:
  metadata: {id: rewind_moving_compensate}
  variables: [{name: undone, type: integer, default: 0}]
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = 2"}, compensation: {task_id: undo_b}}
    - {id: hold, type: wait, depends_on: [b], config: {duration: 2m}}
    - id: c
      type: python
      depends_on: [a, hold]
      config: {code: "result = tasks['b']['output'] * 10 + variables['undone']"}
    - id: undo_b
      type: python
      depends_on: [b]
      config: {code: "result = variables['undone'] + 1"}
      outputs: [{name: undone, value: "${response}", export: true}]
  outputs: {mappings: {c: "${tasks.c.output}"}}
""",
    # Rewind into a loop's body: the run ends (three iterations of a do_while counting n up to 3, then after),
    # is rewound to inc, the body's second task, in the last iteration, with after's compensation first; the
    # loop reopens at that iteration without evaluating its condition, note kept, inc runs again (n 4, the
    # condition now ends the loop) and after runs again: {"after": 40, "count": [{"n": 1}, {"n": 2}, {"n": 4}]}.
    "rewind_loop": """
workflow:
  metadata: {id: rewind_loop}
  variables: [{name: n, type: integer, default: 0}]
  tasks:
    - id: after
      type: python
      depends_on: [count]
      config: {code: "result = variables['n'] * 10"}
      compensation: {task_id: undo_after}
    - {id: undo_after, type: python, config: {code: "result = 'undone'"}}
""" + COUNTING_LOOP + """  outputs: {mappings: {after: "${tasks.after.output}", count: "${tasks.count.output}"}}
""",
    # Rewind of a moving run into a loop's body: the do_while of rewind_loop ends (n 3), after runs (30), and
    # while the run waits on hold it is rewound to inc in the loop's last iteration: the rewind pauses it,
    # reopens the loop there (note kept, inc runs again: n 4), fences off after, hold and its timer, and
    # reopens; the loop ends, after runs again, the run waits again and ends:
    # {"last": 41, "count": [{"n": 1}, {"n": 2}, {"n": 4}]}.
    "rewind_loop_moving": """
workflow:
  metadata: {id: rewind_loop_moving}
  variables: [{name: n, type: integer, default: 0}]
  tasks:
    - {id: after, type: python, depends_on: [count], config: {code: "result = variables['n'] * 10"}}
    - {id: hold, type: wait, depends_on: [after], config: {duration: 2m}}
    - {id: last, type: python, depends_on: [hold], config: {code: "result = tasks['after']['output'] + 1"}}
""" + COUNTING_LOOP + """  outputs: {mappings: {last: "${tasks.last.output}", count: "${tasks.count.output}"}}
""",
    # Rewind into the body of a loop whose iterations run in parallel: three iterations two at a time (0 and 1,
    # then 2 once one ends), a body of two tasks; the ended run is rewound to inc in iteration 0, the first
    # window's (its end started iteration 2 in the clean run). Only iteration 0 reopens, note kept, inc runs
    # again, and its end is the loop's: {"after": [10, 21, 32], "each": [10, 21, 32]}. The loop's end missed
    # (iteration 2 started again, or not counted) leaves the run RUNNING; a sibling run again shows in the
    # actions counted.
    "rewind_parallel_loop": """
workflow:
  metadata: {id: rewind_parallel_loop}
  tasks:
    - {id: after, type: python, depends_on: [each], config: {code: "result = tasks['each']['output']"}}
""" + PARALLEL_EACH + """          - {id: note, type: python, config: {code: "result = n"}}
          - id: inc
            type: python
            depends_on: [note]
            config: {code: "result = tasks['note']['output'] * 10 + loop['index']"}
  outputs: {mappings: {after: "${tasks.after.output}", each: "${tasks.each.output}"}}
""",
    # The same with a body of one task, folded (infra/engine/iterations.py: no iteration items, each iteration
    # kept in its task's item): rewound to twice in iteration 0, whose task's item alone is reset; its end is
    # the loop's: {"each": [2, 5, 8]}.
    "rewind_parallel_folded": """
workflow:
  metadata: {id: rewind_parallel_folded}
""" + PARALLEL_EACH + """          - {id: twice, type: python, config: {code: "result = n * 2 + loop['index']"}}
  outputs: {mappings: {each: "${tasks.each.output}"}}
""",
}


class RewindPlan(NamedTuple):
    """How a workflow's run is rewound: to ``to``, with ``compensate``; once ended (``moving`` False), or while
    it runs, once ``when`` (by default ``to``) is COMPLETED (``moving`` True). It must then end, rewound once."""

    to: str
    compensate: bool
    moving: bool
    when: str = ""
    iteration: int | None = None  # of ``to``'s loop (None: the last that ran)


REWINDS = {"rewind": RewindPlan("b", True, False), "rewind_moving": RewindPlan("b", False, True),
           "rewind_moving_compensate": RewindPlan("b", True, True), "rewind_loop": RewindPlan("inc", True, False),
           "rewind_loop_moving": RewindPlan("inc", False, True, when="after"),
           "rewind_parallel_loop": RewindPlan("inc", False, False, iteration=0),
           "rewind_parallel_folded": RewindPlan("twice", False, False, iteration=0)}


def rewind_options(rewind: RewindPlan) -> dict:
    """The keyword arguments of ``Engine.rewind_run`` a REWINDS entry asks for."""
    return {"compensate": rewind.compensate, "iteration": rewind.iteration}


def rewound(view: dict, rewind: RewindPlan | None, asked: bool) -> bool:
    """Whether an ended run is done with: no rewind is due, or it was asked and the run ended again."""
    return rewind is None or (asked and view.get("redrives") == 1)


def rewind_due(view: dict, rewind: RewindPlan | None, asked: bool) -> bool:
    """Whether the run (not ended) is to be rewound now: a moving rewind not asked yet, its task COMPLETED."""
    return (rewind is not None and rewind.moving and not asked and view.get("status") == "RUNNING"
            and (view.get("tasks") or {}).get(rewind.when or rewind.to, {}).get("status") == "COMPLETED")


class Crash(BaseException):
    """The process dies here."""


class NotEnded(TimeoutError):
    """The run did not end in time: ``view`` is where it stood (compared, so the report shows what hung)."""

    def __init__(self, run_id: str, view: dict | None):
        super().__init__(f"run {run_id} did not end: {view}")
        self.view = view


def summary(view: dict) -> dict:
    if view.get("status") == "NOT_STARTED":
        return view
    def comparable(task_id: str, output):
        # Times differ between runs (the clock is moved by the harness): compare what was decided.
        if task_id == "ask":
            return (output or {}).get("decision")
        if isinstance(output, dict) and "tool_calls" in output:  # how long each call took differs
            return {**output, "tool_calls": [{k: v for k, v in c.items() if k != "duration_ms"}
                                             for c in output["tool_calls"]]}
        if isinstance(output, dict) and "woke_at" in output:
            return "woke"
        if (view.get("workflow_id"), task_id) in (("parallel_loop", "sq"), ("for_each_wait0", "tick"),
                                                  ("rewind_parallel_loop", "note"), ("rewind_parallel_loop", "inc"),
                                                  ("rewind_parallel_folded", "twice")):
            # The view shows a body task's last instance to end, and parallel iterations end in any
            # order: the loop's own output (each iteration's, in order) is what is compared.
            return "an iteration's"
        return output

    return {"status": view["status"], "outputs": view["outputs"],
            "tasks": {k: (t["status"], comparable(k, t["output"]), t["attempts"]) for k, t in view["tasks"].items()}}


def difference(clean, got, path: str = "") -> dict:
    """Where ``got`` differs from ``clean``: {path: [clean's value, got's value]} at the deepest mapping
    key the two disagree on (a missing key shows as None)."""
    if isinstance(clean, dict) and isinstance(got, dict):
        found: dict = {}
        for key in [*clean, *(k for k in got if k not in clean)]:
            found.update(difference(clean.get(key), got.get(key), f"{path}.{key}" if path else str(key)))
        return found
    return {} if clean == got else {path or "(run)": [clean, got]}


class Harness:
    """What every store's enumeration shares: counting the engine's operations of a run, crashing once
    at the chosen one, and driving the run to its end across restarts. A subclass says what an
    operation is (its hooks call ``before`` and ``after``), what a process is (``runtime``: an object
    with ``lock``, ``pump_once`` and ``stop``) and how to tell a start message is queued."""

    unit = "calls"  # what an operation is, as the counts are printed
    idle_sleep = 0.05  # real seconds an idle pass waits (the emulated SQS redelivers in real time)

    def __init__(self, clock):
        import os

        # A callback/approval POST's delayed self-check (60 s by default) comes after 1 s here,
        # like the SQS redelivery: a crash after its write is healed within a scenario's time.
        os.environ["LOOPLINE_SAFETY_DELAY_SECONDS"] = "1"
        self.clock = clock
        self.calls = 0
        self.active = False  # count only the engine's work: handler invocations and start_run
        self.crash_at: tuple[int, str] | None = None

    def before(self) -> None:
        """An operation of the engine's begins: the crash may come before it."""
        if not self.active:
            return
        self.calls += 1
        if self.crash_at == (self.calls, "before"):
            self.crash_at = None
            raise Crash(f"before call {self.calls}")

    def after(self) -> None:
        """The operation has had its effect: the crash may come before the caller hears of it."""
        if self.active and self.crash_at == (self.calls, "after"):
            self.crash_at = None
            raise Crash(f"after call {self.calls}")

    def fresh(self) -> None:
        """Before each run: whatever a scenario needs of its own."""

    def _as_api(self, work):
        """The API's work (a request), crashable like the handlers'."""
        self.active = True
        try:
            return work()
        finally:
            self.active = False

    def runtime(self):
        raise NotImplementedError

    def _rewind(self, run_id: str, rewind: RewindPlan) -> bool:
        """Ask for the rewind as the API does (crashable too); True once answered (accepted, or refused as
        under way): not asked again."""
        from infra.wiring import get_engine

        self.active = True
        try:
            get_engine().rewind_run(run_id, rewind.to, **rewind_options(rewind))
            return True
        finally:
            self.active = False

    def has_start_message(self, runtime) -> bool:
        """Is anything of the run queued (visible or in flight) that the worker will act on?"""
        raise NotImplementedError

    def close(self) -> None:
        """After the last run."""

    def drive(self, text: str, crash_at: tuple[int, str] | None, timeout: float = 30.0,
              rewind: RewindPlan | None = None) -> dict:
        """Start and run ``text`` to its end, crashing once at ``crash_at`` and restarting (``rewind``: once
        it has ended, rewind it so, and run it to its end again)."""
        from infra.engine import LinkError
        from infra.wiring import get_engine
        from statemachine.compiler import compile_workflow

        plan = compile_workflow(text, "w.yaml")
        self.fresh()
        self.calls, self.crash_at = 0, crash_at
        runtime = self.runtime()
        run_id = f"run-{time.monotonic_ns()}"
        deadline = time.monotonic() + timeout
        started = asked = False
        self.crashed_in_start = False
        migration = MigrateFirst() if plan.workflow_id == "migration" else None
        while True:
            try:
                if not started:
                    started = True  # a crash inside start_run is the API dying: the run is not started again
                    with runtime.lock:
                        self.active = True
                        try:
                            get_engine().start_run(plan, {}, run_id=run_id)
                        except Crash:
                            self.crashed_in_start = True
                            raise
                        finally:
                            self.active = False
                while time.monotonic() < deadline:
                    with runtime.lock:
                        view = get_engine().describe_run(run_id)
                        if view is None and self.crashed_in_start and not self.has_start_message(runtime):
                            runtime.stop()  # the API died before anything durable: POST /runs failed
                            return {"status": "NOT_STARTED", "outputs": None, "tasks": {}}
                        if view and view["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                            if rewound(view, rewind, asked):
                                runtime.stop()
                                return view
                            if rewind and not asked:
                                asked = self._rewind(run_id, rewind)
                        elif view and rewind_due(view, rewind, asked):
                            asked = self._rewind(run_id, rewind)
                        if migration is not None and migration.holds(get_engine(), run_id, view, self._as_api):
                            view = None  # decided once the run is on the new version
                        for entry in (view or {}).get("approvals", []):
                            self.active = True  # the approval POST is the API's work: crashable too
                            try:
                                get_engine().decide(entry["url"].rsplit("/", 1)[1], "APPROVED", "fine")
                            except LinkError:
                                pass  # listed, but its link is not stored yet (a crash mid-setup): retry later
                            finally:
                                self.active = False
                    if runtime.pump_once() == 0:
                        self.clock.advance(61)  # timers, retries and leases come due; SQS redelivers in 1 s
                        time.sleep(self.idle_sleep)
                view = get_engine().describe_run(run_id)
                runtime.stop()
                raise NotEnded(run_id, view)
            except Crash:
                self.active = False
                runtime.stop()  # the process is gone: all its memory with it
                runtime = self.runtime()
            except Exception as error:  # a crash that surfaced through a library's error handling
                if "Crash" not in repr(error):
                    raise
                self.active = False
                runtime.stop()
                runtime = self.runtime()


class AwsHarness(Harness):
    """The embedded default: an operation is an AWS call of the handlers or the API (botocore's hooks)."""

    def __init__(self):
        import boto3

        from infra.clock import ManualClock
        from loopline.embedded.runtime import EmbeddedAws

        super().__init__(ManualClock())
        self.aws = EmbeddedAws(redelivery_seconds=1)
        boto3.setup_default_session(region_name="us-east-1")
        self.events = boto3.DEFAULT_SESSION.events
        self.events.register_first("before-call", self._before)
        self.events.register("after-call", self._after)

    def _before(self, **_):
        self.before()

    def _after(self, **_):
        self.after()

    def has_start_message(self, runtime) -> bool:
        sqs = self.aws.client("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=self.aws.stack.physical["ReadyQueue"], AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) > 0

    def runtime(self):
        from loopline.embedded.runtime import LocalRuntime

        # The task runner runs inline, inside the worker's Invoke (its record sent before the invoke
        # returns): the run is one sequence of AWS calls, the same on every try.
        runtime = LocalRuntime(self.aws, clock=self.clock, inline_code=True)
        invoke = runtime.invoke

        def counted(function_id, event):
            self.active = True
            try:
                return invoke(function_id, event)
            finally:
                self.active = False

        runtime.invoke = counted
        return runtime


def enumerate_all(harness: Harness, only: str | None, totals: dict[str, int], failures: list[dict],
                  points: tuple[int, int] | None = None) -> None:
    """Each workflow (or ``only``): a clean run, then a crash before and after each of its operations
    (``points``: only those from the first to the last given, counted from 1)."""
    for name, text in WORKFLOWS.items():
        if only and name != only:
            continue
        began = time.monotonic()
        rewind = REWINDS.get(name)
        clean = summary(harness.drive(text, None, rewind=rewind))
        calls = harness.calls
        tried = passed = reached = 0
        first, last = points or (1, calls)
        for k in range(max(first, 1), min(last, calls) + 1):
            for side in ("before", "after"):
                tried += 1
                try:
                    got = summary(harness.drive(text, (k, side), rewind=rewind))
                except NotEnded as error:
                    got = {**summary(error.view or {"status": "NOT_STARTED"}), "error": "did not end"}
                except Exception as error:  # noqa: BLE001 - reported, not hidden
                    got = {"error": f"{type(error).__name__}: {error}"[:300]}
                reached += harness.crash_at is None  # not reached: an "after" of an operation that raised
                # A crash inside start_run before the start message was sent leaves no run: the
                # client's POST /runs failed and nothing durable happened. That is the right outcome.
                if got == clean or got.get("status") == "NOT_STARTED":
                    passed += 1
                else:
                    failures.append({"workflow": name, "call": k, "side": side, "clean": clean, "got": got})
        totals["tried"] += tried
        totals["passed"] += passed
        totals["crashed"] = totals.get("crashed", 0) + reached
        print(f"{name:<13} {calls:>3} {harness.unit}  {tried:>4} crash points  {passed:>4} passed  "
              f"({reached} crashed)  {time.monotonic() - began:.0f} s", file=sys.stderr)


def _span(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    if not first.isdigit() or not last.isdigit() or int(first) > int(last):
        raise argparse.ArgumentTypeError(f"'{text}' is not FIRST-LAST (e.g. 1-40)")
    return int(first), int(last)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(WORKFLOWS))
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    parser.add_argument("--store", choices=("aws", "sqlite"), default="aws",
                        help="aws: the embedded default (moto), crashed around each AWS call; sqlite: local "
                             "mode on a state file (`loopline run --local`), crashed around each transaction")
    parser.add_argument("--full", action="store_true",
                        help="print each failure's clean and crashed runs whole, not only where they differ")
    parser.add_argument("--points", metavar="FIRST-LAST", type=_span,
                        help="only the crash points around these operations (a long enumeration in parts: each "
                             "process's emulated AWS keeps every run, and grows)")
    args = parser.parse_args()
    if args.store == "sqlite":
        from bench.crash_sqlite import SQLiteHarness

        harness: Harness = SQLiteHarness()
    else:
        harness = AwsHarness()
    totals = {"tried": 0, "passed": 0}
    failures: list[dict] = []
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}", file=sys.stderr)
    try:
        enumerate_all(harness, args.only, totals, failures, args.points)
    finally:
        harness.close()
    print(f"total: {totals['tried']} crash points tried, {totals['passed']} passed", file=sys.stderr)
    for failure in failures[:10]:
        if args.full:
            print(json.dumps(failure), file=sys.stderr)
        else:  # where the run differs from the clean one, whole; the rest left out
            where = {k: failure[k] for k in ("workflow", "call", "side")}
            print(json.dumps({**where, "differs": difference(failure["clean"], failure["got"])}), file=sys.stderr)
    if args.json:
        print(json.dumps({**totals, "failures": failures[:20]}))
    return 0 if totals["tried"] == totals["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
