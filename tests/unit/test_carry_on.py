"""Carrying on in the same invocation (infra/engine/carry_on.py): a task made ready by the message being
handled runs next without going round the queue; a crash at any point of it is healed by the message's
redelivery, which walks on through the tasks it carried (Propagation.apply_edge)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest

from infra.clock import iso
from infra.engine.keys import body_key
from infra.ports import TaskChange, Written
from loopline.memory.local_mode import LocalMode
from tests.unit.test_engine_semantics import drive, start, statuses

CHAIN = """
workflow:
  metadata: {id: carried}
  tasks:
    - {id: a, type: wait, config: {duration: 0s}}
    - {id: b, type: wait, depends_on: [a], config: {duration: 0s}}
    - {id: c, type: wait, depends_on: [b], config: {duration: 0s}}
    - {id: d, type: wait, depends_on: [c], config: {duration: 0s}}
"""

QUERIES = """
workflow:
  metadata: {id: carried_queries}
  tasks:
    - {id: a, type: wait, config: {duration: 0s}}
    - {id: b, type: database, depends_on: [a], config: {connection: main, query: "SELECT 1 AS x"}}
    - {id: c, type: database, depends_on: [b], config: {connection: main, query: "SELECT 2 AS x"}}
    - {id: d, type: database, depends_on: [c], config: {connection: main, query: "SELECT 3 AS x"}}
"""

FAN = """
workflow:
  metadata: {id: fan}
  tasks:
    - {id: a, type: wait, config: {duration: 0s}}
    - {id: x, type: wait, depends_on: [a], config: {duration: 0s}}
    - {id: y, type: wait, depends_on: [a], config: {duration: 0s}}
    - {id: z, type: wait, depends_on: [a], config: {duration: 0s}}
    - {id: j, type: wait, depends_on: [x, y, z], config: {duration: 0s}}
"""


class Crash(BaseException):
    """A process dying: nothing in the engine catches it."""


def _sent(local) -> list[dict]:
    sent: list[dict] = []
    real = local.queue.send

    def counting(message, delay_seconds=0):
        sent.append(message)
        return real(message, delay_seconds)

    local.queue.send = counting
    return sent


def test_a_chain_runs_in_the_invocation_of_its_first_task(local, clock):
    sent = _sent(local)
    run_id = start(local, CHAIN)
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    # The start message's invocation runs a, then b, c and d: none goes through the queue.
    assert [m.get("task") for m in sent if m.get("k") == "exec"] == []
    carried = local.store.load(run_id, ["a", "b", "c", "d"])[1]
    assert [carried[t].carried for t in "abcd"] == [True, True, True, True]


def test_with_no_steps_to_carry_every_ready_task_goes_through_the_queue(local, clock):
    local.engine.carry_on.limit = 0
    sent = _sent(local)
    run_id = start(local, CHAIN)
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    assert [m.get("task") for m in sent if m.get("k") == "exec"] == ["a", "b", "c", "d"]


def test_a_fan_out_carries_one_branch_and_sends_the_others(local, clock):
    sent = _sent(local)
    run_id = start(local, FAN)
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    execs = [m.get("task") for m in sent if m.get("k") == "exec"]
    assert sorted(execs) == ["y", "z"]  # a and x carried by the start; j carried by the last branch


def test_with_too_little_time_left_the_ready_task_is_sent(local, clock):
    sent = _sent(local)
    run_id = start(local, CHAIN)
    message = local.queue.read(local.queue.claim().body)  # the start message
    local.engine.handle(message, time_left=lambda: 1.0)
    assert [m.get("task") for m in sent if m.get("k") == "exec"] == ["a"]
    assert drive(local, run_id, clock)["status"] == "COMPLETED"


# A task with effects (a database query) is claimed, then ended: two writes, each a crash point. A
# wait already due is claimed and ended in one write (Outcomes.claim_and_succeed): a crash falls
# before it or after it.
CRASHES = {"claim": ("database", "RUNNING", False), "finish": ("database", "COMPLETED", True),
           "before at once": ("wait", "COMPLETED", False), "after at once": ("wait", "COMPLETED", True)}


@pytest.mark.parametrize("where", list(CRASHES))
@pytest.mark.parametrize("task", ["b", "c"])
def test_a_crash_in_a_carried_task_is_healed_by_the_redelivered_message(tmp_path, monkeypatch, clock, task, where):
    kind, status, after = CRASHES[where]
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    monkeypatch.setenv("LOOPLINE_DB_MAIN", f"sqlite://{db}")
    local = LocalMode(clock=clock, inline_code=True)
    run_id = start(local, CHAIN if kind == "wait" else QUERIES)
    delivery = local.queue.claim()  # the start message: a is carried on by it, then b, c and d
    message = local.queue.read(delivery.body)
    real = local.store.change_task

    def dying(run, task_id, change: TaskChange, *rest, **kw):
        if task_id == task and change.status == status:
            if after:
                real(run, task_id, change, *rest, **kw)
            raise Crash(f"died {'after' if after else 'before'} writing {task} {status}")
        return real(run, task_id, change, *rest, **kw)

    local.store.change_task = dying
    with pytest.raises(Crash):
        local.engine.handle(message)
    local.store.change_task = real
    before = statuses(local.engine.describe_run(run_id))
    assert before["d"] == "PENDING"  # nothing carried it on: its invocation died
    clock.advance(3600)  # past any lease
    local.engine.handle(message)  # the same message, redelivered: it walks on through what it carried
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and set(statuses(view).values()) == {"COMPLETED"}
    local.close()


def test_a_carried_task_loads_from_what_its_invocation_saw_for_a_second_at_most(local, clock):
    run_id = start(local, CHAIN)
    reads: list[list[str]] = []
    real = local.store.load
    local.store.load = lambda run, ids: reads.append(ids) or real(run, ids)
    message = local.queue.read(local.queue.claim().body)  # the start message
    local.engine.handle(message)
    assert statuses(local.engine.describe_run(run_id)) == dict.fromkeys("abcd", "COMPLETED")
    assert reads == []  # the run as the start's create saw it; a had no item; b, c and d: the writes since

    recall = local.engine.recall
    with recall.recalling():
        recall.load(run_id, ["a"])
        recall.load(run_id, ["a"])
        clock.advance(recall.max_age + 0.5)
        recall.load(run_id, ["a"])  # too old: read again
    recall.load(run_id, ["a"])  # outside an invocation: every load reads
    assert reads == [["a"], ["a"], ["a"]]


def test_a_carried_tasks_claim_counts_its_one_edge_and_writes_no_edge_of_its_own(local, clock):
    run_id = start(local, CHAIN)
    edges: list[str] = []
    real = local.store.resolve_edge
    local.store.resolve_edge = lambda run, task, dep, outcome: edges.append(task) or real(run, task, dep, outcome)
    assert drive(local, run_id, clock)["status"] == "COMPLETED"
    assert edges == []
    b = local.store.load(run_id, ["b"])[1]["b"]
    assert (b.resolved, b.deps_ok, b.carried) == (frozenset({"a"}), 1, True)


def test_where_the_carried_task_has_an_item_its_edge_is_written_as_usual(local, clock):
    run_id = start(local, CHAIN)
    local.store.resolve_edge(run_id, "c", "x-unrelated", "ok")  # c has an item: its claim cannot count b's edge
    message = local.queue.read(local.queue.claim().body)  # the start message
    local.engine.handle(message)
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED"
    c = local.store.load(run_id, ["c"])[1]["c"]
    assert c.resolved == frozenset({"x-unrelated", "b"}) and c.status == "COMPLETED"


LOOP = """
workflow:
  metadata: {id: looped}
  control_flow:
    loops:
      - id: each
        type: for_each
        items: [1, 2, 3, 4, 5]
        iterator: item
        tasks:
          - {id: step, type: wait, config: {duration: 0s}}
"""


def test_a_loops_iterations_run_in_the_invocation_that_starts_them(local, clock):
    sent = _sent(local)
    run_id = start(local, LOOP)
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and len(view["tasks"]["each"]["output"]) == 5
    assert [m.get("task") for m in sent if m.get("k") == "exec"] == []  # the loop and every iteration carried on


def test_the_first_task_of_an_iteration_just_created_loads_without_a_read(local, clock):
    run_id = start(local, LOOP)
    reads: list[list[str]] = []
    real = local.store.load
    local.store.load = lambda run, ids: reads.append(ids) or real(run, ids)
    local.engine.handle(local.queue.read(local.queue.claim().body))  # the start message: the whole loop
    assert local.engine.describe_run(run_id)["status"] == "COMPLETED"
    assert not [ids for ids in reads if any(i.startswith("step@") for i in ids)]


def test_where_the_first_task_of_a_new_iteration_has_an_item_it_is_decided_again(local, clock):
    run_id = start(local, LOOP)
    key = body_key("step", "each", 2)
    local.store.resolve_edge(run_id, key, "x-unrelated", "ok")  # an item the presumption does not know of
    delivery = local.queue.claim()  # the start message
    local.engine.handle(local.queue.read(delivery.body))
    local.queue.ack(delivery)  # handled without an error: never delivered again
    view = local.engine.describe_run(run_id)
    assert view["status"] == "COMPLETED" and len(view["tasks"]["each"]["output"]) == 5
    step = local.store.load(run_id, [key])[1][key]
    assert step.status == "COMPLETED" and step.resolved == frozenset({"x-unrelated"})


def test_a_runs_first_task_loads_without_a_read_and_claims_only_where_it_has_no_item(local, clock):
    run_id = start(local, CHAIN)
    reads: list[list[str]] = []
    real = local.store.load
    local.store.load = lambda run, ids: reads.append(ids) or real(run, ids)
    claims: list[bool] = []
    real_change = local.store.change_task

    def watching(run, task_id, change: TaskChange, *rest, **kw):
        if task_id == "a":
            claims.append(change.absent)
        return real_change(run, task_id, change, *rest, **kw)

    local.store.change_task = watching
    local.engine.handle(local.queue.read(local.queue.claim().body))  # the start message
    assert statuses(local.engine.describe_run(run_id)) == dict.fromkeys("abcd", "COMPLETED")
    assert not [ids for ids in reads if "a" in ids]  # the run from the start's create, a presumed absent
    assert claims == [True]  # a's claim (and end) is conditional on its having no item


@pytest.mark.parametrize("status", ["RUNNING", "COMPLETED"])
def test_where_a_runs_first_task_has_an_item_it_is_decided_again_on_it(local, clock, status):
    """A redelivered start message: the root it presumes absent has an item (claimed, or ended and
    carried on before). Its claim is refused, and it is decided on its item as read: a running attempt
    is not claimed again, an ended one carries the run on."""
    run_id = start(local, CHAIN)
    delivery = local.queue.claim()  # the start message
    message = local.queue.read(delivery.body)
    local.engine.carry_on.limit = 0 if status == "RUNNING" else 1  # stop after a's claim / a's end
    if status == "RUNNING":
        local.store.change_task(run_id, "a", TaskChange(
            status="RUNNING", from_status=(None, "PENDING"),
            set={"attempt": 1, "lease_until": iso(clock.now() + timedelta(seconds=60)), "carried": True}))
    else:
        local.engine.handle(message)  # a ends, b is sent (one step only)
        assert statuses(local.engine.describe_run(run_id))["a"] == "COMPLETED"
    local.engine.carry_on.limit = 100
    local.engine.handle(message)  # delivered again
    a = local.store.load(run_id, ["a"])[1]["a"]
    if status == "RUNNING":
        assert (a.status, a.attempt) == ("RUNNING", 1)  # not claimed twice: the lease holds
    else:
        # Ended: the redelivery propagates it, and carries b, c and d on (b's sent exec then finds b ended).
        assert a.status == "COMPLETED" and statuses(local.engine.describe_run(run_id)) == dict.fromkeys(
            "abcd", "COMPLETED")
    local.queue.ack(delivery)
    clock.advance(3600)  # past the lease
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and set(statuses(view).values()) == {"COMPLETED"}
    assert local.store.load(run_id, ["a"])[1]["a"].attempt == 1  # a takeover keeps the attempt


# A delivered batch (Engine.batch, the worker's lambda_handler): the items its exec messages of one run
# will load are read once, together; each message then starts from that image, as the batch's earlier
# messages left it.
FAN_WHEN = """
workflow:
  metadata: {id: fan_when}
  tasks:
    - {id: a, type: wait, config: {duration: 0s}}
    - {id: x, type: wait, depends_on: [a], config: {duration: 0s}}
    - {id: y, type: wait, depends_on: [a], config: {duration: 0s}}
    - {id: z, type: wait, depends_on: [a], config: {duration: 0s}}
    - id: j
      type: wait
      depends_on: [x, y, z]
      when: "${tasks.x.status == 'COMPLETED' && tasks.y.status == 'COMPLETED' && tasks.z.status == 'COMPLETED'}"
      config: {duration: 0s}
"""


def _branches(local, run_id) -> dict[str, dict]:
    """Start the run with nothing carried beyond a: x, y and z wait in the queue as exec messages."""
    local.engine.carry_on.limit = 1
    local.engine.handle(local.queue.read(local.queue.claim().body))  # the start: a, then x, y, z sent
    local.engine.carry_on.limit = 100
    messages = {}
    while (delivery := local.queue.claim()) is not None:
        message = local.queue.read(delivery.body)
        messages[message["task"]] = message
        local.queue.ack(delivery)
    assert sorted(messages) == ["x", "y", "z"]
    return messages


def test_a_batchs_exec_messages_of_one_run_load_with_one_read(local, clock):
    run_id = start(local, FAN_WHEN)
    messages = _branches(local, run_id)
    reads: list[list[str]] = []
    real = local.store.load
    local.store.load = lambda run, ids: reads.append(ids) or real(run, ids)
    batch = [messages[t] for t in "xyz"]
    with local.engine.batch(batch):
        for message in batch:
            local.engine.handle(message)
    view = local.engine.describe_run(run_id)
    assert view["status"] == "COMPLETED" and set(statuses(view).values()) == {"COMPLETED"}
    # One read for the three branches; j, carried on by z, loads from what the batch read and wrote
    # (x and y ended by the batch's earlier messages, z and j's edges by z's).
    assert reads == [["x", "a", "y", "z"]]


def test_a_batch_item_another_worker_moved_on_is_read_again_by_a_task_that_depends_on_it(local, clock):
    """x's exec is in the batch, but another worker (another thread: the batch's image is this one's)
    ends x after the batch's read. j, carried on by z's message, must see x as it is, not as the batch
    read it: the batch's image gives a message only its own items and ended ones."""
    run_id = start(local, FAN_WHEN)
    messages = _branches(local, run_id)
    batch = [messages[t] for t in "xyz"]
    with local.engine.batch(batch):
        other = threading.Thread(target=local.engine.handle, args=(messages["x"],))
        other.start()
        other.join()
        local.engine.handle(messages["y"])
        local.engine.handle(messages["z"])  # the last edge: j is carried on here
    view = local.engine.describe_run(run_id)
    assert statuses(view) == dict.fromkeys("axyzj", "COMPLETED")  # j's `when` saw x COMPLETED


def test_a_batch_message_sees_what_an_earlier_message_of_the_batch_wrote(local, clock):
    """The same exec message twice in one batch: the second starts from the item as the first wrote it
    (ended), not as the batch read it, and carries the run on from there like any redelivery."""
    run_id = start(local, FAN_WHEN)
    messages = _branches(local, run_id)
    batch = [messages["x"], messages["x"], messages["y"], messages["z"]]
    claims: list[str] = []
    real = local.store.change_task

    def watching(run, task_id, change: TaskChange, *rest, **kw):
        claims.append(task_id)
        return real(run, task_id, change, *rest, **kw)

    local.store.change_task = watching
    with local.engine.batch(batch):
        for message in batch:
            local.engine.handle(message)
    assert statuses(local.engine.describe_run(run_id)) == dict.fromkeys("axyzj", "COMPLETED")
    assert claims.count("x") == 1  # the second x found it ended: no refused claim of a stale image


@pytest.mark.parametrize("api_wrote_it", [True, False])
def test_the_start_reads_the_run_the_api_wrote_and_writes_it_only_where_it_is_missing(local, clock, api_wrote_it):
    """A refused conditional write is billed as a write: the start reads the run instead, and writes it
    (with the API's condition) only where the API died between its enqueue and its write."""
    real_create = local.store.create_run
    if not api_wrote_it:
        local.store.create_run = lambda run: Written(True, run)  # the API's write never happens
    run_id = start(local, CHAIN)
    local.store.create_run = real_create
    creates: list[str] = []
    local.store.create_run = lambda run: creates.append(run.run_id) or real_create(run)
    local.engine.handle(local.queue.read(local.queue.claim().body))  # the start message
    assert creates == ([] if api_wrote_it else [run_id])
    assert statuses(local.engine.describe_run(run_id)) == dict.fromkeys("abcd", "COMPLETED")
