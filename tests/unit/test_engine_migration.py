"""Migration of running runs (infra/engine/migration.py), in memory and on SQLite: kept work, kept waits whose
links and timers still decide, refusals, duplicates, and the run's history."""

from __future__ import annotations

import pytest

from infra.engine import LinkError
from loopline.memory.local_mode import LocalMode
from statemachine.versions import UnknownVersion
from tests.conftest import compile_yaml
from tests.unit.test_engine_semantics import deliver_twice, drive, settle, statuses

V1 = """
workflow:
  metadata: {id: order, version: "1.0.0"}
  tasks:
    - {id: prepare, type: python, config: {code: "result = 'draft 1'"}}
    - id: review
      type: approval
      depends_on: [prepare]
      config: {approvers: [ann@example.com], timeout: 1d}
    - {id: ship, type: python, depends_on: [review], config: {code: "result = 'shipped'"}}
  outputs:
    mappings: {shipped: "${tasks.ship.output}"}
"""

# prepare renamed to draft, a notify task added between the approval and ship.
V2 = """
workflow:
  metadata: {id: order, version: "2.0.0"}
  tasks:
    - {id: draft, renamed_from: prepare, type: python, config: {code: "result = 'draft 1'"}}
    - id: review
      type: approval
      depends_on: [draft]
      config: {approvers: [ann@example.com], timeout: 1d}
    - {id: notify, type: python, depends_on: [review], config: {code: "result = 'told ' + tasks['draft']['output']"}}
    - {id: ship, type: python, depends_on: [notify], config: {code: "result = 'shipped'"}}
  outputs:
    mappings: {shipped: "${tasks.ship.output}", told: "${tasks.notify.output}"}
"""


@pytest.fixture(params=["memory", "sqlite"])
def mode(clock, request, tmp_path):
    made = LocalMode(clock=clock, inline_code=True, state=tmp_path / "state" if request.param == "sqlite" else None)
    yield made
    made.close()


def registered(mode, *texts):
    plans = [compile_yaml(t) for t in texts]
    for plan in plans:
        mode.engine.register_workflow(plan)
    return plans


def waiting_run(mode, text=V1):
    plan = mode.engine.find_workflow("order@1.0.0") or compile_yaml(text)
    run_id = mode.engine.start_run(plan, {})
    view = settle(mode, run_id)
    assert statuses(view)["review"] == "WAITING"
    return run_id, view["approvals"][0]["url"].rsplit("/", 1)[1]


def test_a_waiting_run_is_migrated_dry_run_first_and_finishes_on_the_new_version(mode, clock):
    v1, v2 = registered(mode, V1, V2)
    run_id, token = waiting_run(mode)
    dry = mode.engine.migrate_run(run_id, "order@2.0.0", dry_run=True)
    assert dry["allowed"] and not dry["changed"] and dry["dry_run"]
    assert dry["lines"] == ["migrate order 1.0.0 -> 2.0.0", "  keep: 'draft' (was 'prepare'), completed",
                            "  keep waiting: 'review', waiting", "  add: 'notify', pending",
                            "  re evaluate: 'ship', pending"]
    assert mode.engine.store.get_run(run_id).plan_hash == v1.hash  # a dry run changes nothing
    assert mode.queue.receive() is None

    accepted = mode.engine.migrate_run(run_id, "order@2.0.0", reason="notify before shipping")
    assert accepted["changed"] and accepted["epoch"] == 1
    view = settle(mode, run_id)
    run = mode.engine.store.get_run(run_id)
    assert run.plan_hash == v2.hash and run.status == "RUNNING"
    assert statuses(view) == {"draft": "COMPLETED", "review": "WAITING", "notify": "PENDING", "ship": "PENDING"}
    assert view["tasks"]["draft"]["output"] == "draft 1"  # kept, under its new id

    # The link the approver was sent before the migration still decides, on the new version.
    assert mode.engine.decide(token, "APPROVED", "ok")["outcome"] == "APPROVED"
    view = drive(mode, run_id, clock)
    assert view["status"] == "COMPLETED"
    assert view["outputs"] == {"shipped": "shipped", "told": "told draft 1"}
    reasons = [e.reason for e in mode.history.of_run(run_id, limit=500).items]
    assert "migrated from order@1.0.0 to order@2.0.0: notify before shipping" in reasons
    assert "paused to migrate to order@2.0.0" in reasons
    # The metrics of the tasks after the switch are labelled from the new version: notify, which the old
    # one does not have, is a python task, not a task of no type.
    settle(mode, run_id)
    text = mode.metrics.render().splitlines()
    assert 'loopline_task_duration_seconds_count{status="COMPLETED",task_type="python",workflow="order"} 3' in text
    assert not [line for line in text if line.startswith('loopline_task_duration_seconds_count{status="COMPLETED",'
                                                         'workflow="order"}')]


def test_the_old_deadline_timer_is_stale_and_the_kept_wait_times_out_on_the_new_plan(mode, clock):
    def approving(text):
        return text.replace("timeout: 1d}", "timeout: 1d, escalation_policy: {action: auto_approve}}")
    registered(mode, approving(V1), approving(V2))
    run_id, _ = waiting_run(mode)
    mode.engine.migrate_run(run_id, "order@2.0.0")
    settle(mode, run_id)
    # The deadline fires once (the v1 timer is dropped as stale, the v2 one decides), and notify runs after it.
    view = drive(mode, run_id, clock)
    assert view["status"] == "COMPLETED", view
    assert statuses(view)["notify"] == "COMPLETED"


def test_every_message_delivered_twice_makes_one_migration(mode, clock):
    registered(mode, V1, V2)
    run_id, token = waiting_run(mode)
    mode.engine.migrate_run(run_id, "order@2.0.0")
    mode.engine.migrate_run(run_id, "order@2.0.0")  # asked twice before the worker got to it: one epoch
    deliver_twice(mode)
    run = mode.engine.store.get_run(run_id)
    assert run.redrives == 1 and run.status == "RUNNING"
    mode.engine.decide(token, "APPROVED")
    deliver_twice(mode)
    view = drive(mode, run_id, clock)
    assert view["status"] == "COMPLETED" and view["outputs"]["told"] == "told draft 1"


def test_a_refused_migration_reports_each_task_and_changes_nothing(mode, clock):
    renames_the_wait = V2.replace("    - id: review\n", "    - id: check\n      renamed_from: review\n").replace(
        "depends_on: [review]", "depends_on: [check]")
    registered(mode, V1, renames_the_wait)
    run_id, token = waiting_run(mode)
    refused = mode.engine.migrate_run(run_id, "order@2.0.0")
    assert not refused["allowed"] and not refused["changed"]
    assert refused["report"]["blockers"] == [{
        "task": "review", "status": "WAITING",
        "reason": "it is waiting, and version 2.0.0 renames it to 'check': its links and timers name it"}]
    assert mode.queue.receive() is None
    mode.engine.decide(token, "APPROVED")
    assert drive(mode, run_id, clock)["status"] == "COMPLETED"


def test_runs_that_cannot_move_and_unknown_versions(mode, clock):
    registered(mode, V1, V2)
    run_id, token = waiting_run(mode)
    assert mode.engine.migrate_run("nope", "order@2.0.0") is None
    with pytest.raises(UnknownVersion):
        mode.engine.migrate_run(run_id, "order@9.0.0")
    registered(mode, V1.replace("id: order", "id: other"))
    with pytest.raises(UnknownVersion, match="not a version of the run's workflow 'order'"):
        mode.engine.migrate_run(run_id, "other@1.0.0")
    same = mode.engine.migrate_run(run_id, "order@1.0.0")
    assert same["report"]["blockers"][0]["reason"] == "it runs order@1.0.0 already"
    mode.engine.decide(token, "APPROVED")
    drive(mode, run_id, clock)
    ended = mode.engine.migrate_run(run_id, "order@2.0.0", dry_run=True)
    assert ended["report"]["blockers"] == [{"task": "$run", "status": "COMPLETED",
                                            "reason": "it is COMPLETED; only a RUNNING or PAUSED run can be migrated"}]


def ship_waits_then_removed() -> tuple[str, str]:
    """v1 ends with a wait that v2 removes: dropped while it has not started, a refusal once it waits."""
    v1 = V1.replace("""{id: ship, type: python, depends_on: [review], config: {code: "result = 'shipped'"}}""",
                    "{id: ship, type: wait, depends_on: [review], config: {duration: 1h}}").replace(
        "mappings: {shipped: \"${tasks.ship.output}\"}", "mappings: {review: \"${tasks.review.output}\"}")
    v2 = v1.replace('"1.0.0"', '"2.0.0"').replace(
        "    - {id: ship, type: wait, depends_on: [review], config: {duration: 1h}}\n", "")
    return v1, v2


def test_something_that_started_after_the_request_makes_the_worker_refuse_and_resume(mode, clock):
    v1, v2 = ship_waits_then_removed()
    first, _ = registered(mode, v1, v2)
    run_id, token = waiting_run(mode)
    assert mode.engine.migrate_run(run_id, "order@2.0.0")["changed"]
    message = mode.queue.receive()
    # Before the worker gets to it, the approval is decided and ship starts waiting.
    mode.engine.decide(token, "APPROVED")
    assert statuses(settle(mode, run_id))["ship"] == "WAITING"
    mode.engine.handle(message)
    run = mode.engine.store.get_run(run_id)
    assert (run.status, run.redrives, run.plan_hash) == ("RUNNING", 0, first.hash)
    settle(mode, run_id)  # the history is read off the feed
    reasons = [e.reason for e in mode.history.of_run(run_id, limit=500).items]
    assert ("migration to order@2.0.0 refused: 'ship' (waiting): it is waiting, and version 2.0.0 removes it: "
            "its answer would be lost") in reasons
    assert drive(mode, run_id, clock)["status"] == "COMPLETED"


def test_a_refusal_leaves_a_run_an_operator_paused_paused_and_is_recorded_once(mode, clock):
    v1, v2 = ship_waits_then_removed()
    first, _ = registered(mode, v1, v2)
    run_id, token = waiting_run(mode)
    mode.engine.pause_run(run_id)
    assert mode.engine.migrate_run(run_id, "order@2.0.0")["changed"]
    accepted = mode.queue.receive()
    assert accepted["paused"] is True  # accepted while an operator had the run paused
    # The worker finds what the request did not: ship waits (decided and started before the pause, here
    # replayed by resuming, deciding and pausing again), which version 2.0.0 would lose.
    mode.engine.resume_run(run_id)
    mode.engine.decide(token, "APPROVED")
    assert statuses(settle(mode, run_id))["ship"] == "WAITING"
    mode.engine.pause_run(run_id)
    mode.engine.handle(accepted)
    mode.engine.handle(accepted)  # a duplicate
    run = mode.engine.store.get_run(run_id)
    assert (run.status, run.redrives, run.plan_hash) == ("PAUSED", 0, first.hash)  # as the operator left it
    settle(mode, run_id)
    reasons = [e.reason for e in mode.history.of_run(run_id, limit=500).items]
    refusals = [r for r in reasons if r.startswith("migration to order@2.0.0 refused")]
    assert len(refusals) == 1, reasons
    mode.engine.resume_run(run_id)
    assert drive(mode, run_id, clock)["status"] == "COMPLETED"


def test_a_link_answers_409_while_the_run_is_being_migrated(mode, clock):
    registered(mode, V1, V2)
    run_id, token = waiting_run(mode)
    mode.engine.migrate_run(run_id, "order@2.0.0")
    old = mode.engine.store.get_run(run_id).plan_hash
    mode.engine.store.set_run_status(run_id, "PAUSED", expected="RUNNING")
    # The kept wait stamped by the migration, the run not switched yet: the state a crash between the two leaves.
    rec = mode.engine.store.list_tasks(run_id)["review"]
    from dataclasses import replace
    assert mode.engine.store.migrate_task(run_id, replace(rec, redrive=1, links_epoch=0), 1, old, rec)
    with pytest.raises(LinkError) as caught:
        mode.engine.decide(token, "APPROVED")
    assert caught.value.status == 409
    settle(mode, run_id)  # the migration message, delivered: it finishes what was started
    assert mode.engine.decide(token, "APPROVED")["outcome"] == "APPROVED"
    assert drive(mode, run_id, clock)["outputs"]["told"] == "told draft 1"


# v3 declares its migration from 1.x: prepare renamed without renamed_from, variables reshaped and set.
V3 = """
workflow:
  metadata: {id: order, version: "3.0.0"}
  variables: [{name: attempts, default: 0}, {name: note, default: ""}]
  tasks:
    - {id: draft, type: python, config: {code: "result = 'draft 1'"}}
    - id: review
      type: approval
      depends_on: [draft]
      config: {approvers: [ann@example.com], timeout: 1d}
    - {id: ship, type: python, depends_on: [review], config: {code: "result = note + ' / ' + str(attempts)"}}
  outputs:
    mappings: {shipped: "${tasks.ship.output}"}
  migrations:
    - from: "1.x"
      rename: {prepare: draft}
      state: "${ {'attempts': 1 + 1} }"
      set: {note: "from ${tasks.prepare.output}"}
"""


def test_a_declared_migration_renames_and_sets_the_runs_variables(mode, clock):
    registered(mode, V1, V3)
    run_id, token = waiting_run(mode)
    dry = mode.engine.migrate_run(run_id, "order@3.0.0", dry_run=True)
    assert dry["lines"] == ["migrate order 1.0.0 -> 3.0.0", "  keep: 'draft' (was 'prepare'), completed",
                            "  keep waiting: 'review', waiting", "  re evaluate: 'ship', pending",
                            "  set variable 'attempts' to 2", "  set variable 'note' to \"from draft 1\""]
    assert dry["report"]["variables"] == {"attempts": 2, "note": "from draft 1"}
    mode.engine.migrate_run(run_id, "order@3.0.0")
    settle(mode, run_id)
    assert mode.engine.store.get_run(run_id).variables == {"attempts": 2, "note": "from draft 1"}
    mode.engine.decide(token, "APPROVED")
    assert drive(mode, run_id, clock)["outputs"] == {"shipped": "from draft 1 / 2"}


def test_a_declared_state_that_fails_refuses_the_migration(mode):
    registered(mode, V1, V3.replace("${ {'attempts': 1 + 1} }", "${ 1 / 0 }"))
    run_id, _ = waiting_run(mode)
    refused = mode.engine.migrate_run(run_id, "order@3.0.0")
    assert not refused["allowed"]
    (blocker,) = refused["report"]["blockers"]
    assert blocker["task"] == "$migrations" and blocker["reason"].startswith(
        "version 3.0.0's migration from 1.0.0 failed: ")


def test_the_run_gains_the_new_versions_input_defaults_and_a_newly_required_input_refuses(mode, clock):
    with_currency = V2.replace("  tasks:\n", "  inputs:\n    schema: {type: object, properties: {currency: "
                               "{type: string, default: EUR}}}\n  tasks:\n", 1).replace(
        "result = 'told ' + tasks['draft']['output']", "result = 'told in ' + inputs['currency']")
    requires = with_currency.replace('"2.0.0"', '"3.0.0"').replace("default: EUR}}}", "}}, required: [vat]}")
    registered(mode, V1, with_currency, requires)
    run_id, token = waiting_run(mode)
    refused = mode.engine.migrate_run(run_id, "order@3.0.0", dry_run=True)
    assert refused["report"]["blockers"][0]["task"] == "$inputs"
    assert refused["report"]["blockers"][0]["reason"].startswith("the run's input does not fit version 3.0.0: ")
    mode.engine.migrate_run(run_id, "order@2.0.0")
    settle(mode, run_id)
    assert mode.engine.store.get_run(run_id).inputs == {"currency": "EUR"}
    mode.engine.decide(token, "APPROVED")
    assert drive(mode, run_id, clock)["outputs"]["told"] == "told in EUR"


class Crash(BaseException):
    """The worker dies here (nothing of the engine catches it)."""


WRITES = ("set_run_status", "migrate_task", "switch_plan", "change_task", "put_token", "resolve_edge")


@pytest.mark.parametrize("side", ["before", "after"])
@pytest.mark.parametrize("crash_at", range(1, 10))
def test_a_crash_at_any_write_of_the_migration_is_healed_by_its_redelivery(mode, clock, crash_at, side):
    registered(mode, V1, V2)
    run_id, token = waiting_run(mode)
    mode.engine.migrate_run(run_id, "order@2.0.0")
    message = mode.queue.receive()
    store, count = mode.engine.store, [0]

    def crashing(real):
        def write(*args, **kwargs):
            count[0] += 1
            if count[0] == crash_at and side == "before":
                raise Crash
            answer = real(*args, **kwargs)
            if count[0] == crash_at:
                raise Crash
            return answer
        return write

    for name in WRITES:
        setattr(store, name, crashing(getattr(store, name)))
    try:
        mode.engine.handle(message)
    except Crash:
        pass
    for name in WRITES:
        delattr(store, name)  # a new process: the store's own methods again
    mode.engine.handle(message)  # the message's redelivery
    settle(mode, run_id)
    assert mode.engine.store.get_run(run_id).redrives == 1
    mode.engine.decide(token, "APPROVED")
    view = drive(mode, run_id, clock)
    assert view["outputs"] == {"shipped": "shipped", "told": "told draft 1"}
    assert statuses(view) == {"draft": "COMPLETED", "review": "COMPLETED", "notify": "COMPLETED",
                              "ship": "COMPLETED"}


def test_a_late_copy_of_the_message_does_not_pause_the_run_it_moved(mode, clock):
    """Two deliveries at once: the second read the run RUNNING on the old version before the first moved it."""
    registered(mode, V1, V2)
    run_id, token = waiting_run(mode)
    mode.engine.migrate_run(run_id, "order@2.0.0")
    message = mode.queue.receive()
    before = mode.engine.store.get_run(run_id)
    mode.engine.handle(message)  # the first delivery, to its end
    mode.engine.store.get_run = lambda _run_id: before  # the second's read, from before
    try:
        mode.engine.handle(message)
    finally:
        del mode.engine.store.get_run
    assert mode.engine.store.get_run(run_id).status == "RUNNING"
    settle(mode, run_id)
    mode.engine.decide(token, "APPROVED")
    assert drive(mode, run_id, clock)["status"] == "COMPLETED"


# A join counted by reading its dependencies (statemachine/joins.py): m1 has ended, m2 waits for the approval.
JOIN_V1 = """
workflow:
  metadata: {id: joined, version: "1.0.0"}
  tasks:
    - {id: m1, type: python, config: {code: "result = 1"}}
    - {id: review, type: approval, config: {approvers: [ann@example.com]}}
    - {id: m2, type: python, depends_on: [review], config: {code: "result = 2"}}
    - {id: m3, type: python, depends_on: [m1, m2], config: {code: "result = 'v1'"}}
  outputs: {mappings: {m3: "${tasks.m3.output}"}}
"""


@pytest.mark.parametrize("deps", ["[m1, m2]", "[m2]"], ids=["still-a-join", "one-dependency"])
def test_a_join_pending_at_a_migration_is_counted_again_under_the_new_version(mode, clock, deps):
    v2 = JOIN_V1.replace('"1.0.0"', '"2.0.0"').replace("'v1'", "'v2'").replace("depends_on: [m1, m2]",
                                                                               f"depends_on: {deps}")
    registered(mode, JOIN_V1, v2)
    run_id = mode.engine.start_run(mode.engine.find_workflow("joined@1.0.0"), {})
    view = settle(mode, run_id)
    assert (statuses(view)["m1"], statuses(view)["review"], statuses(view)["m3"]) == ("COMPLETED", "WAITING",
                                                                                       "PENDING")
    assert mode.engine.store.load(run_id, ["m3"])[1] == {}  # m1's end was read, not written on m3
    assert mode.engine.migrate_run(run_id, "joined@2.0.0")["changed"]
    settle(mode, run_id)
    assert statuses(mode.engine.describe_run(run_id))["m3"] == "PENDING"  # m2 has not ended
    token = mode.engine.describe_run(run_id)["approvals"][0]["url"].rsplit("/", 1)[1]
    mode.engine.decide(token, "APPROVED")
    done = drive(mode, run_id, clock)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"m3": "v2"}
