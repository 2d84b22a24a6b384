"""Redrive (issue #5 item 4): a FAILED run resumes from its failed tasks, keeping what completed."""

from __future__ import annotations

import pytest

from infra.engine import LinkError
from infra.ports import TaskRecord
from infra.tasks.base import TaskFailure
from infra.tasks.registry import TaskTypes
from statemachine.messages import Exec, encode
from tests.unit.test_engine_errors import SAGA
from tests.unit.test_engine_semantics import deliver_twice, drive, settle, start, statuses

CHAIN = """
workflow:
  metadata: {id: chain}
  tasks:
    - {id: a, type: python, config: {code: "result = 1"}}
    - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + 1"}}
    - {id: c, type: python, depends_on: [b], config: {code: "result = tasks['b']['output'] * 10"}}
    - {id: log, type: python, config: {code: "result = 'logged'"}}
  error_handling:
    finally: [log]
  outputs:
    mappings: {c: "${tasks.c.output}"}
"""


class Actions(list):
    """The actions that ran, as "task" or "task.<loop index>"; those listed in ``broken`` fail."""

    def __init__(self):
        super().__init__()
        self.broken: set[str] = set()


def breakable(monkeypatch) -> Actions:
    """Counts every task action (in the worker or in the task runner) and fails the broken ones:
    a code task's code answers with the failure, as failing code does."""
    import infra.dispatch.runner as runner
    from infra.sandbox.request import CodeReply

    ran = Actions()
    real_type, real_code = TaskTypes.run, runner.run_code

    def name_of(task_id, index):
        name = task_id if index is None else f"{task_id}.{index}"
        ran.append(name)
        return name in ran.broken or task_id in ran.broken, name

    def in_worker(types, node, config, run_, scope, ctx):
        broken, name = name_of(node.id, (scope.roots.get("loop") or {}).get("index"))
        if broken:
            raise TaskFailure("Broken", f"{name} is broken")
        return real_type(types, node, config, run_, scope, ctx)

    def in_runner(request, settings):
        broken, name = name_of(request.task_id, (request.namespace.get("loop") or {}).get("index"))
        if broken:
            return CodeReply(error={"type": "Broken", "message": f"{name} is broken"})
        return real_code(request, settings)

    monkeypatch.setattr(TaskTypes, "run", in_worker)
    monkeypatch.setattr(runner, "run_code", in_runner)
    return ran


@pytest.fixture
def ran(monkeypatch):
    return breakable(monkeypatch)


def failed_run(local, clock, ran, text, *broken, inputs=None):
    """A run of ``text`` that FAILED because of ``broken``, which the test has since repaired."""
    ran.broken.update(broken)
    run_id = start(local, text, inputs)
    view = drive(local, run_id, clock)
    assert view["status"] == "FAILED", view
    ran.broken.clear()
    ran.clear()
    clock.advance(60)
    return run_id, view


def test_a_redrive_resumes_from_the_failed_task_and_keeps_what_completed(local, clock, ran):
    run_id, failed = failed_run(local, clock, ran, CHAIN, "b")
    assert statuses(failed) == {"a": "COMPLETED", "b": "FAILED", "c": "CANCELLED", "log": "COMPLETED"}
    before = local.store.list_tasks(run_id)["a"]
    assert local.engine.redrive_run(run_id) == {"run_id": run_id, "status": "FAILED", "changed": True, "redrive": 1}
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["error"] is None
    assert ran == ["b", "c", "log"]  # a is kept; the finally task runs again at the new end
    after = local.store.list_tasks(run_id)["a"]
    assert (after.output, after.started_at, after.ended_at) == (before.output, before.started_at, before.ended_at)
    assert done["tasks"]["b"]["attempts"] == 1 and done["redrives"] == 1
    assert done["ended_at"] > failed["ended_at"]


def test_only_a_failed_run_can_be_redriven(local, clock, ran):
    run_id = start(local, CHAIN)
    assert "only a FAILED run" in local.engine.redrive_run(run_id)["reason"]  # RUNNING
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    refused = local.engine.redrive_run(run_id)
    assert refused["changed"] is False and refused["status"] == "COMPLETED"
    local.engine.handle({"k": "redrive", "run": run_id, "epoch": 1})  # a forged message changes nothing
    assert local.engine.describe_run(run_id)["status"] == "COMPLETED"
    assert local.engine.redrive_run("nope") is None
    saga = drive(local, start(local, SAGA), clock)
    refused = local.engine.redrive_run(saga["run_id"])
    assert refused["changed"] is False and "compensation ran" in refused["reason"]


def test_asked_twice_with_every_message_delivered_twice_it_redrives_once(local, clock, ran):
    run_id, _ = failed_run(local, clock, ran, CHAIN, "b")
    assert local.engine.redrive_run(run_id)["redrive"] == local.engine.redrive_run(run_id)["redrive"] == 1
    deliver_twice(local)
    done = local.engine.describe_run(run_id)
    assert done["status"] == "COMPLETED" and done["redrives"] == 1 and done["outputs"] == {"c": 20}
    assert sorted(ran) == ["b", "c", "log"]
    local.engine.handle({"k": "redrive", "run": run_id, "epoch": 1})  # a late copy
    assert local.engine.describe_run(run_id)["status"] == "COMPLETED" and sorted(ran) == ["b", "c", "log"]


def test_a_message_from_before_the_redrive_does_not_start_a_reset_task(local, clock, ran):
    run_id, _ = failed_run(local, clock, ran, CHAIN, "b")
    plan_hash = local.store.get_run(run_id).plan_hash
    local.engine.redrive_run(run_id)
    local.pump_once()  # the redrive: b starts again (carried on in the redrive's own invocation)
    local.engine.handle(encode(Exec(run_id, plan_hash, "c", 1)))  # e.g. a late duplicate from the first epoch
    assert local.engine.describe_run(run_id)["tasks"]["c"]["status"] == "PENDING" and "c" not in ran
    assert drive(local, run_id, clock)["outputs"] == {"c": 20}
    assert ran == ["b", "c", "log"]


def killed_then_redelivered(local, monkeypatch, where: str) -> None:
    """The next message's worker dies right after the store's first ``where`` write; the message comes
    back, and is delivered twice more."""

    class Killed(BaseException):
        pass

    message = local.queue.receive()
    real = getattr(local.store, where)

    def dies_after(*args, **kwargs):
        real(*args, **kwargs)
        monkeypatch.setattr(local.store, where, real)
        raise Killed(where)

    monkeypatch.setattr(local.store, where, dies_after)
    with pytest.raises(Killed):
        local.engine.handle(message)
    for _ in range(2):
        local.engine.handle(message)


@pytest.mark.parametrize("where", ["reset_task", "reopen_run", "resolve_edge"])
def test_a_crash_anywhere_in_the_redrive_is_healed_by_its_redelivery(local, clock, ran, monkeypatch, where):
    """The worker dies right after its first write of a step (1 reset, 2 reopen, 3 restart); the
    message comes back, and is delivered twice more."""

    text = CHAIN.replace("depends_on: [b]", "depends_on: [a, b]")  # c gets an edge from a kept task
    run_id, _ = failed_run(local, clock, ran, text, "b")
    local.engine.redrive_run(run_id)
    killed_then_redelivered(local, monkeypatch, where)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20} and done["redrives"] == 1
    assert ran == ["b", "c", "log"]


FAN = """
workflow:
  metadata: {id: fan}
  tasks:
    - {id: load, type: python, config: {code: "result = 2"}}
    - {id: left, type: python, depends_on: [load], config: {code: "result = tasks['load']['output'] + 1"}}
    - {id: right, type: python, depends_on: [load], config: {code: "result = tasks['load']['output'] * 10"}}
    - id: join
      type: python
      depends_on: [left, right]
      config: {code: "result = tasks['left']['output'] + tasks['right']['output']"}
  outputs:
    mappings: {join: "${tasks.join.output}"}
"""


def test_a_fan_out_reruns_only_the_failed_branch(local, clock, ran):
    run_id, failed = failed_run(local, clock, ran, FAN, "right")
    assert failed["tasks"]["left"]["status"] == "COMPLETED"
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"join": 23}
    assert ran == ["right", "join"]


def test_two_failed_branches_of_a_kept_task_both_run_again(local, clock, ran):
    """Each reset task's one dependency is kept: the edges are written, so the one this invocation
    does not carry on goes through the queue with the reset task's epoch (it was once dropped as stale)."""
    run_id, _ = failed_run(local, clock, ran, FAN, "left", "right")
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"join": 23}
    assert sorted(ran) == ["join", "left", "right"]


def test_a_parallel_block_keeps_its_completed_branches_or_all_of_them_once_it_completed(local, clock, ran):
    from tests.unit.test_engine_parallel import block

    run_id, _ = failed_run(local, clock, ran, block("all", broken="result = 'b'"), "b1")
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["fan"]["output"] == [[2, 4, 6], 106, "b"]
    assert ran == ["b1", "report"]  # (a block's own aggregation is no action)
    # A merge block completed with a failed branch, then `report` failed the run: the block
    # has judged its branches, so its failed one is not run again.
    run_id, _ = failed_run(local, clock, ran, block("merge", broken="result = 'b'"), "b1", "report")
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["b1"]["status"] == "FAILED"
    assert ran == ["report"]


def test_a_failed_for_each_iteration_runs_again_and_the_completed_ones_are_kept(local, clock, ran):
    from tests.unit.test_engine_loops import FOR_EACH

    text = FOR_EACH % {"extra": ""}
    clean = drive(local, start(local, text), clock)
    ran.clear()
    run_id, failed = failed_run(local, clock, ran, text, "square.1")
    assert failed["tasks"]["each"]["error"]["type"] == "Broken"
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED"
    assert done["tasks"]["each"]["output"] == clean["tasks"]["each"]["output"]  # the sum exported goes on
    assert done["tasks"]["after"]["output"] == clean["tasks"]["after"]["output"]
    assert ran == ["square.1", "add.1", "square.2", "add.2", "after"]  # iteration 0 is kept


def test_a_parallel_for_each_keeps_the_iterations_that_completed(local, clock, ran):
    from tests.unit.test_engine_loops import FOR_EACH

    text = FOR_EACH % {"extra": "parallel: true\n        max_concurrent: 2"}
    clean = drive(local, start(local, text, {"items": [3, 1, 4, 1, 5]}), clock)
    ran.clear()
    run_id, _ = failed_run(local, clock, ran, text, "square.3", inputs={"items": [3, 1, 4, 1, 5]})
    completed = {int(key.split(".")[1]) for key, rec in local.store.list_tasks(run_id).items()
                 if key.startswith("each.") and rec.status == "COMPLETED"}
    assert completed  # the loop failed with some iterations done
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED"
    assert [o["item"] for o in done["tasks"]["each"]["output"]] == [3, 1, 4, 1, 5]
    assert [o["item"] for o in clean["tasks"]["each"]["output"]] == [3, 1, 4, 1, 5]
    assert not {f"square.{i}" for i in completed} & set(ran) and "square.3" in ran


def test_a_while_loop_runs_again_from_its_start(local, clock, ran):
    from tests.unit.test_engine_loops import WHILE

    run_id, _ = failed_run(local, clock, ran, WHILE % {"kind": "while", "start": 0, "limit": 10}, "step.1")
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    # Its condition reads a variable the kept first iteration had moved on: it starts again from
    # there (while/do_while loops keep no iterations), here with one iteration left to 3.
    assert done["status"] == "COMPLETED" and done["tasks"]["count_up"]["output"] == [{"count": 2}, {"count": 3}]
    assert ran == ["step.0", "step.1"]


def test_a_caught_failure_and_its_handler_are_kept(local, clock, ran):
    from tests.unit.test_engine_errors import CATCH

    text = CATCH.replace("    - id: fallback", "    - {id: last, type: python, depends_on: [use], "
                                                "config: {code: 'result = 1'}}\n    - id: fallback")
    run_id, failed = failed_run(local, clock, ran, text, "last")
    assert failed["tasks"]["fallback"]["status"] == "COMPLETED"
    local.engine.redrive_run(run_id)
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    assert ran == ["last"]


def test_when_only_a_finally_task_failed_it_alone_runs_again(local, clock, ran):
    run_id, failed = failed_run(local, clock, ran, CHAIN, "log")
    assert failed["tasks"]["c"]["status"] == "COMPLETED"
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"c": 20}
    assert ran == ["log"]


def test_a_sub_workflow_task_gets_a_new_child_run_and_a_child_run_is_not_redriven(local, clock, ran):
    from tests.unit.test_engine_children import PARENT, register

    register(local)
    run_id, failed = failed_run(local, clock, ran, PARENT % ("child_wf", ""), "double")
    old_child = local.store.list_tasks(run_id)["kid"].child_run
    refused = local.engine.redrive_run(old_child)
    assert refused["changed"] is False and run_id in refused["reason"]
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["after"]["output"] == {"doubled": 42}
    new_child = local.store.list_tasks(run_id)["kid"].child_run
    assert new_child == f"{old_child}-r1" and local.store.get_run(old_child).status == "FAILED"
    assert ran == ["double", "after"]


def test_a_timed_out_run_gets_a_new_deadline_and_new_links(local, clock, ran):
    run_id = start(local, """
    workflow:
      metadata: {id: timed}
      config: {timeout: 1h}
      tasks:
        - {id: a, type: python, config: {code: "result = 1"}}
        - {id: hook, type: callback, depends_on: [a]}
        - {id: after, type: python, depends_on: [hook], config: {code: "result = tasks['hook']['output']"}}
    """)
    old = settle(local, run_id)["callbacks"][0]["url"].rsplit("/", 1)[1]
    clock.advance(3601)
    failed = settle(local, run_id)
    assert failed["status"] == "FAILED" and failed["error"]["type"] == "WorkflowTimeout"
    ran.clear()
    local.engine.redrive_run(run_id)
    view = settle(local, run_id)
    assert view["status"] == "RUNNING" and view["tasks"]["hook"]["status"] == "WAITING"
    with pytest.raises(LinkError):  # the link of before the redrive is void
        local.engine.submit_callback(old, {"n": 1})
    clock.advance(1800)  # the deadline counts from the redrive
    assert settle(local, run_id)["status"] == "RUNNING"
    local.engine.submit_callback(view["callbacks"][0]["url"].rsplit("/", 1)[1], {"n": 2})
    done = settle(local, run_id)
    assert done["status"] == "COMPLETED" and done["tasks"]["after"]["output"] == {"n": 2}
    assert ran == ["after"]


def test_a_copy_that_read_the_run_before_it_reopened_resets_nothing(local, clock, ran, monkeypatch):
    """Two copies of the message: the second read the run while it was still FAILED, then lists the
    tasks after the first reopened it and started an iteration that did not exist before (no epoch
    stamp yet): its resets must all be refused, or it would undo the new epoch's progress."""
    from tests.unit.test_engine_loops import FOR_EACH

    run_id, _ = failed_run(local, clock, ran, FOR_EACH % {"extra": ""}, "square.1")
    snapshot = local.store.get_run(run_id)
    local.engine.redrive_run(run_id)
    message = local.queue.receive()
    local.engine.handle(message)
    while "each.2" not in local.store.list_tasks(run_id):
        assert local.pump_once()
    assert local.store.list_tasks(run_id)["each.2"].status == "RUNNING"
    with monkeypatch.context() as patched:
        patched.setattr(local.store, "get_run", lambda _run_id: snapshot)
        local.engine.handle(message)
    assert local.store.list_tasks(run_id)["each.2"].status != "PENDING"
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    assert ran == ["square.1", "add.1", "square.2", "add.2", "after"]


def test_what_a_redrive_resets_in_a_for_each_loop():
    """The classification alone: a for_each whose dependencies are kept keeps its list and its
    COMPLETED iterations; the other iterations are reset with every body item, existing or not
    (a message for one may still be on its way), as is the handler instance of a reset failure."""
    from infra.engine.redrive import kept_nodes, resets
    from infra.ports import TaskRecord
    from tests.conftest import compile_yaml
    from tests.unit.test_engine_loops import FOR_EACH

    plan = compile_yaml(FOR_EACH % {"extra": ""})
    recs = {key: TaskRecord(key, status=status, **extra) for key, status, extra in [
        ("each", "FAILED", {"loop_state": {"total": 3}}), ("each:items:0", "COMPLETED", {}),
        ("each.0", "COMPLETED", {}), ("square@each.0", "COMPLETED", {}), ("add@each.0", "COMPLETED", {}),
        ("each.1", "FAILED", {}), ("square@each.1", "FAILED", {"catch": {"handler": "h@square@each.1"}}),
        ("after", "CANCELLED", {})]}
    kept = kept_nodes(plan, recs)
    assert kept == set()
    assert resets(plan, recs, kept) == {
        "each": {"loop_state": {"total": 3}}, "after": None, "each.1": None, "square@each.1": None,
        "add@each.1": None, "h@square@each.1": None}


def test_a_parallel_for_each_of_one_task_keeps_its_completed_iterations(local, clock, ran):
    """Its iterations are kept in its task's items (infra/engine/iterations.py): the completed ones stay."""
    from tests.unit.test_engine_loops import ONE_TASK

    text = ONE_TASK % {"parallel": "true"}
    run_id, _ = failed_run(local, clock, ran, text, "twice.3")
    items = local.store.list_tasks(run_id)
    completed = {i for i in range(5) if (items.get(f"twice@each.{i}") or TaskRecord("")).status == "COMPLETED"}
    assert completed and 3 not in completed
    local.engine.redrive_run(run_id)
    done = drive(local, run_id, clock)
    assert done["status"] == "COMPLETED" and done["tasks"]["each"]["output"] == [10, 13, 16, 19, 22]
    assert not {f"twice.{i}" for i in completed} & set(ran) and "twice.3" in ran
    assert local.store.list_tasks(run_id)["each"].loop_state == {"total": 5, "folded": True}


def test_what_a_redrive_resets_in_a_folded_for_each_loop():
    """A for_each of one task has no iteration items: its task's items are classified as its iterations,
    and the iterations that may have been started without an item yet (the first window, and the one each
    ended iteration started: a message on its way) are stamped too, as their iteration items were."""
    from infra.engine.redrive import kept_nodes, resets
    from tests.conftest import compile_yaml
    from tests.unit.test_engine_loops import ONE_TASK

    plan = compile_yaml(ONE_TASK % {"parallel": "true"})
    recs = {key: TaskRecord(key, status=status, **extra) for key, status, extra in [
        ("each", "FAILED", {"loop_state": {"total": 5, "folded": True}}), ("each:items:0", "COMPLETED", {}),
        ("twice@each.0", "COMPLETED", {}), ("twice@each.1", "FAILED", {})]}
    kept = kept_nodes(plan, recs)
    assert resets(plan, recs, kept) == {
        "each": {"loop_state": {"total": 5, "folded": True}}, "twice@each.1": None,
        "twice@each.2": None}  # started by iteration 0's end; 1 failed, and started none
