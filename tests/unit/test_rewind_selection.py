"""Rewind's choices alone (statemachine/rewind.py): what a rewind to a task discards, and what it refuses."""

from __future__ import annotations

from statemachine.compiler import compile_workflow
from statemachine.rewind import Refusal, compensated_kept, discarded, target, target_refusal, to_compensate
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


def test_a_loop_is_one_checkpoint_and_its_body_is_none():
    loop = plan(FOR_EACH % {"extra": ""})
    assert discarded(loop, "each") == {"each", "after"}
    assert target_refusal(loop, "square", "COMPLETED") == Refusal(
        400, "'square' runs in each iteration of the loop 'each': rewind to 'each'")


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
