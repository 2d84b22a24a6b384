"""Rewind's choices alone (statemachine/rewind.py): what a rewind to a task discards, and what it refuses."""

from __future__ import annotations

from statemachine.compiler import compile_workflow
from statemachine.rewind import (
    busy_loops,
    compensated_kept,
    discarded,
    fenced_deps,
    kept_moving,
    moving_refusal,
    run_fence,
    target,
    target_refusal,
    to_compensate,
    undoing,
    unsettled_refusal,
)
from tests.unit.test_engine_errors import SAGA
from tests.unit.test_engine_loops import FOR_EACH
from tests.unit.test_engine_parallel import block
from tests.unit.test_engine_redrive import CHAIN, FAN

CONDITION = """
workflow:
  metadata: {id: branches}
  tasks:
    - {id: a, type: python, config: {code: "result = 7"}}
    - {id: aside, type: python, depends_on: [a], config: {code: "result = 0"}}
    - {id: join, type: python, depends_on: [hi, lo], config: {code: "result = 'joined'"}}
  control_flow:
    conditions:
      - {id: big, if: "${tasks.a.output > 5}", then: [{id: hi, type: python, config: {code: "result = 1"}}],
         else: [{id: lo, type: python, config: {code: "result = 2"}}]}
"""


def plan(text):
    return compile_workflow(text, "w.yaml")


def test_a_task_discards_itself_and_everything_downstream_of_it():
    assert discarded(plan(CHAIN), "a") == {"a", "b", "c"}
    assert discarded(plan(CHAIN), "c") == {"c"}  # the finally task is no flow node: it runs again anyway
    assert discarded(plan(FAN), "left") == {"left", "join"}
    assert discarded(plan(FAN), "load") == {"load", "left", "right", "join"}


def test_a_condition_discards_both_branches_and_what_joins_them():
    assert discarded(plan(CONDITION), "big") == {"big", "hi", "lo", "join"}
    assert discarded(plan(CONDITION), "hi") == {"hi", "join"}
    assert discarded(plan(CONDITION), "a") == {"a", "big", "hi", "lo", "join", "aside"}


def test_a_block_member_goes_back_with_its_whole_block():
    fan = plan(block("all"))
    assert target(fan, "t2") == "fan" and target(fan, "load") == "load"
    assert discarded(fan, "t2") == discarded(fan, "fan") == {"fan", "d1", "t1", "t2", "b1", "report"}
    assert discarded(fan, "load") == {"load", "fan", "d1", "t1", "t2", "b1", "report"}


def test_a_loop_and_a_task_of_its_body_discard_the_same_flow():
    loop = plan(FOR_EACH % {"extra": ""})
    assert discarded(loop, "each") == {"each", "after"}
    # Its body's tasks run per iteration: the iteration is judged apart (test_rewind_loop_selection.py).
    assert discarded(loop, "square") == {"each", "after"} and target_refusal(loop, "square", None) is None


def test_what_is_no_checkpoint():
    chain = plan(CHAIN)
    assert target_refusal(chain, "b", "COMPLETED") is None and target_refusal(chain, "b", "FAILED") is None
    assert target_refusal(chain, "zzz", None).status == 404
    assert target_refusal(chain, "log", "COMPLETED").status == 400  # a finally task
    assert target_refusal(plan(SAGA), "cancel_hotel", "COMPLETED").status == 400  # a compensation
    for status in (None, "PENDING", "SKIPPED", "CANCELLED", "RUNNING", "WAITING"):
        refused = target_refusal(chain, "b", status)
        assert refused.status == 409 and f"'b' is {status or 'PENDING'}" in refused.reason


def test_the_compensations_a_rewind_runs_first_and_those_it_refuses_to_keep():
    saga = plan(SAGA)
    done = {"flight": "COMPLETED", "hotel": "COMPLETED", "car": "FAILED"}
    # Latest first; car failed, so there is nothing of it to undo.
    assert to_compensate(saga, done, discarded(saga, "flight"), None) == [
        ["cancel_hotel", "hotel"], ["cancel_flight", "flight"]]
    assert to_compensate(saga, done, discarded(saga, "hotel"), None) == [["cancel_hotel", "hotel"]]
    ended = [["cancel_hotel", "hotel"], ["cancel_flight", "flight"]]  # compensated when the run failed
    assert to_compensate(saga, done, discarded(saga, "flight"), ended) == []
    assert compensated_kept(ended, {"flight"}) == ["flight"] and compensated_kept(ended, set()) == []
    assert compensated_kept(None, {"flight"}) == []


# ---------------------------------------------------------------- a moving run (RUNNING or PAUSED)


def test_a_moving_run_keeps_every_flow_task_it_does_not_discard_whatever_it_is_doing():
    fan = plan(FAN)
    assert kept_moving(fan, discarded(fan, "right")) == {"load", "left"}
    assert kept_moving(plan(CHAIN), discarded(plan(CHAIN), "a")) == set()  # the finally task is no flow node


def test_a_reset_item_is_fenced_against_the_discarded_dependencies_only():
    fan = plan(FAN)
    gone = discarded(fan, "right")
    assert fenced_deps(fan, gone, "join") == {"right"}  # left is kept: its edge counts whenever it comes
    assert fenced_deps(fan, gone, "right") == frozenset()  # load is kept
    assert fenced_deps(fan, gone, "left") == frozenset()  # not discarded
    assert fenced_deps(fan, discarded(fan, "load"), "join") == {"left", "right"}
    loops = plan(FOR_EACH % {"extra": ""})
    gone = discarded(loops, "each")
    assert fenced_deps(loops, gone, "each.1") == {"square", "add"}  # an iteration counts its body's ends
    assert fenced_deps(loops, gone, "add@each.1") == {"square"}
    assert fenced_deps(loops, gone, "square@each.1") == frozenset()
    assert fenced_deps(loops, gone, "after") == {"each"}
    assert fenced_deps(loops, frozenset({"after"}), "each.1") == frozenset()  # the loop is kept


def test_the_run_fences_the_discarded_tasks_and_keeps_an_earlier_fence_only_on_ended_tasks():
    assert run_fence(frozenset(), frozenset({"b", "c"}), set()) == ["b", "c"]
    assert run_fence(frozenset({"x", "y"}), frozenset({"c"}), {"x"}) == ["c", "x"]  # y runs: let go


def test_a_moving_run_is_refused_while_it_compensates_stops_or_ends():
    assert moving_refusal("RUNNING", False, False) is None
    assert moving_refusal("PAUSED", False, False) is None
    for args, words in [(("COMPENSATING", False, True), "it is COMPENSATING"),
                        (("RUNNING", True, False), "stopping"),
                        (("RUNNING", False, True), "end steps")]:
        why = moving_refusal(*args)
        assert why is not None and why.status == 409 and words in why.reason, (args, why)


def test_compensate_is_refused_while_a_discarded_task_that_declares_a_compensation_is_at_work():
    saga = plan(SAGA)
    gone = discarded(saga, "hotel")
    for status in ("RUNNING", "WAITING"):
        why = unsettled_refusal(saga, gone, {"flight": "COMPLETED", "hotel": "COMPLETED", "car": status})
        assert why is not None and why.status == 409 and "car declares a compensation" in why.reason
        assert f"({status})" in why.reason
    for status in ("COMPLETED", "FAILED", "PENDING", "READY", "RETRYING", None):  # ended, or parked by the pause
        assert unsettled_refusal(saga, gone, {"hotel": "COMPLETED", **({"car": status} if status else {})}) is None
    assert unsettled_refusal(saga, discarded(saga, "car"), {"hotel": "RUNNING"}) is None  # hotel is kept


def test_only_a_compensation_moves_in_a_run_a_rewind_holds_paused():
    assert undoing("PAUSED", 1, "compensation")
    assert not undoing("PAUSED", None, "compensation")  # paused by an operator: everything parks
    assert not undoing("PAUSED", 1, "handler") and not undoing("PAUSED", 1, "flow")
    assert not undoing("RUNNING", 1, "compensation")  # (a running run parks nothing)


def test_a_discarded_loop_mid_iteration_is_refused():
    loops = plan(FOR_EACH % {"extra": ""})
    why = busy_loops(loops, discarded(loops, "each"), {"each": "RUNNING"})
    assert why is not None and why.status == 409 and "each" in why.reason
    waiting = busy_loops(loops, discarded(loops, "each"), {"each": "WAITING"})  # its iterations running
    assert waiting is not None and waiting.status == 409
    assert busy_loops(loops, discarded(loops, "each"), {"each": "COMPLETED"}) is None
    assert busy_loops(loops, discarded(loops, "after"), {"each": "RUNNING"}) is None  # kept: it goes on
