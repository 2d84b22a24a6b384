"""A join counted by reading (statemachine/joins.py, Propagation._join): which joins are, how their
dependencies' items add up, and that a join so counted writes no edge and starts once, however its
dependencies' ends and reads interleave."""

from __future__ import annotations

from infra.ports import TaskChange, TaskRecord
from statemachine.decisions import DepCounts
from statemachine.joins import SPAN_NODES, counted_by_reading, joined_counts
from statemachine.plan import Plan
from tests.conftest import compile_yaml
from tests.unit.test_carry_on import FAN  # a -> x, y, z -> j
from tests.unit.test_engine_semantics import drive, start, statuses


def wait(task_id: str, *deps: str) -> str:
    """A ``wait: 0s`` task's line of a YAML task list."""
    return f"{{id: {task_id}, type: wait, depends_on: [{', '.join(deps)}], config: {{duration: 0s}}}}"


def plan_of(*tasks: str, control_flow: str = "") -> Plan:
    listed = "".join(f"\n    - {task}" for task in tasks)
    return compile_yaml(f"workflow:\n  metadata: {{id: joins}}\n  tasks:{listed}\n{control_flow}")


def test_a_fan_in_of_tasks_close_together_is_counted_by_reading():
    plan = compile_yaml(FAN)
    assert counted_by_reading(plan, plan.nodes["j"])
    assert not counted_by_reading(plan, plan.nodes["x"])  # one dependency: its claim counts the edge
    assert not counted_by_reading(plan, plan.nodes["a"])


def test_a_span_with_items_that_may_be_many_keeps_the_counted_edges():
    plan = plan_of(wait("a"), "{id: b, type: approval, config: {approvers: [ops@example.com]}}", wait("c"),
                   wait("d", "a", "c"), wait("q"), wait("r", "q", "z"), wait("z"))
    assert not counted_by_reading(plan, plan.nodes["d"])  # the approval b (its votes) lies between a and d
    assert counted_by_reading(plan, plan.nodes["r"])
    ids = [f"t{i:02d}" for i in range(SPAN_NODES)]
    wide = plan_of(*(wait(i) for i in ids), wait("u", ids[0], ids[-1]))
    assert not counted_by_reading(wide, wide.nodes["u"])  # more than SPAN_NODES tasks in its span


def test_a_parallel_block_and_a_loop_keep_their_counted_edges():
    plan = plan_of(wait("a"), control_flow="""
  control_flow:
    parallel:
      - id: p
        branches:
          - {name: one, tasks: [{id: p1, type: wait, config: {duration: 0s}}]}
          - {name: two, tasks: [{id: p2, type: wait, config: {duration: 0s}}]}
    loops:
      - id: each
        type: for_each
        items: [1, 2]
        iterator: item
        tasks:
          - {id: s1, type: wait, config: {duration: 0s}}
          - {id: s2, type: wait, config: {duration: 0s}}
          - {id: s3, type: wait, depends_on: [s1, s2], config: {duration: 0s}}
""")
    assert not counted_by_reading(plan, plan.nodes["p"])
    assert not counted_by_reading(plan, plan.nodes["s3"])


def test_joined_counts_add_up_as_counted_edges_once_every_dependency_has_ended():
    plan = compile_yaml(FAN)
    join = plan.nodes["j"]

    def item(status: str, catch: str | None = None) -> TaskRecord:
        return TaskRecord("t", status=status, catch={"handler": "h@t", "state": catch, "retry": False}
                          if catch else None)

    ended = {"x": item("COMPLETED"), "y": item("SKIPPED"), "z": item("FAILED")}
    assert joined_counts(plan, join, ended) == DepCounts(ok=1, failed=1, skipped=1)
    assert joined_counts(plan, join, {**ended, "z": item("FAILED", "caught")}) == DepCounts(ok=2, skipped=1)
    assert joined_counts(plan, join, {**ended, "z": item("FAILED", "uncaught")}) == DepCounts(ok=1, failed=1,
                                                                                             skipped=1)
    # Not ended for its dependents: a failure whose handler runs, a retry, a task running, one with no item.
    assert joined_counts(plan, join, {**ended, "z": item("FAILED", "pending")}) is None
    assert joined_counts(plan, join, {**ended, "z": item("RETRYING", "retrying")}) is None
    assert joined_counts(plan, join, {**ended, "z": item("RUNNING")}) is None
    assert joined_counts(plan, join, {"x": ended["x"], "y": ended["y"]}) is None


def test_an_untaken_branch_forces_its_join_member_skipped():
    plan = plan_of(wait("a"), wait("b"), control_flow="""
  control_flow:
    conditions:
      - id: check
        if: "${true}"
        then: []
        else:
          - {id: c, type: wait, depends_on: [a, b], config: {duration: 0s}}
""")
    c = plan.nodes["c"]
    taken = {"check": TaskRecord("check", status="COMPLETED", output={"result": True}),
             "a": TaskRecord("a", status="COMPLETED"), "b": TaskRecord("b", status="COMPLETED")}
    counts = joined_counts(plan, c, taken)
    assert counts is not None and counts.forced_skip


def test_a_join_counted_by_reading_writes_no_edge_and_runs_once(local, clock):
    edges: list[str] = []
    real = local.store.resolve_edge
    local.store.resolve_edge = lambda run, task, dep, outcome, epoch=None: edges.append(task) or real(
        run, task, dep, outcome, epoch)
    run_id = start(local, FAN)
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and set(statuses(view).values()) == {"COMPLETED"}
    assert edges == []
    j = local.store.load(run_id, ["j"])[1]["j"]
    assert (j.resolved, j.deps_ok, j.attempt) == (frozenset(), 0, 1)


def test_branches_that_end_before_either_reads_both_see_the_join_ready_and_it_runs_once(local, clock):
    local.engine.carry_on.limit = 0  # every ready task through the queue: both branches' reads send j
    run_id = start(local, FAN)
    sent: list[dict] = []
    send = local.queue.send
    local.queue.send = lambda message, delay_seconds=0: sent.append(message) or send(message, delay_seconds)
    real = local.store.read_span
    reads: list[str] = []

    def late(run, ids):
        # The second branch reads only after the third has ended and read: both see every dependency ended.
        reads.append(run)
        if len(reads) == 2:
            delivery = local.queue.claim()
            third = local.queue.read(delivery.body)
            assert third["task"] in ("x", "y", "z")
            local.engine.handle(third)
            local.queue.ack(delivery)
        return real(run, ids)

    local.store.read_span = late
    for _ in range(4):  # the start, a, then two branches (the third is handled inside the second's read)
        delivery = local.queue.claim()
        local.engine.handle(local.queue.read(delivery.body))
        local.queue.ack(delivery)
    local.store.read_span = real
    assert len(reads) == 3
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and set(statuses(view).values()) == {"COMPLETED"}
    # Both reads made j ready: one claim applied (a wait already due ends at its claim), the other lost it.
    ends = [t for t in local.transitions.of_run(run_id) if getattr(t, "item", None) == "j"]
    assert [(t.previous, t.status, t.attempt) for t in ends] == [("PENDING", "COMPLETED", 1)]
    assert [m.get("task") for m in sent if m.get("k") == "exec"].count("j") == 2


def test_a_joins_read_goes_to_the_store_inside_an_invocation(local, clock):
    run_id = start(local, FAN)
    recall = local.engine.recall
    with recall.recalling():
        recall.load(run_id, ["x", "j"])  # remembered: no item either
        # Another process ends x meanwhile: a read of the span sees it, whatever the invocation remembers.
        local.store.change_task(run_id, "x", TaskChange(status="COMPLETED", from_status=(None, "PENDING")))
        assert recall.read_span(run_id, ["j", "x", "y"])["x"].status == "COMPLETED"
        assert recall.load(run_id, ["x"])[1]["x"].status == "COMPLETED"  # and remembered as read
