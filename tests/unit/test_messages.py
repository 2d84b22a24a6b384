"""The work-queue messages: one typed union, one encode, one decode (statemachine/messages.py)."""

from __future__ import annotations

import json

import pytest

from statemachine.messages import (
    BranchTimeout,
    ChildDone,
    Exec,
    Kind,
    Migrate,
    Notify,
    ParentRef,
    Redrive,
    Remind,
    RunTimeout,
    Start,
    TimerFired,
    decode,
    encode,
    handed_back,
    retried,
)

PARENT = ParentRef("run-1", "plan-1", "sub", "sub", 2)
EVERY_KIND = [
    Start("r", "p", {"a": 1}),
    Start("r", "p", {}, PARENT),
    Exec("r", "p", "t", 1),
    Exec("r", "p", "t", 3, key="h@t", ctx={"role": "handler", "for": "t"}, epoch=2, watch=True, handed_back=1),
    TimerFired(Kind.WAKE, "r", "p", "t", 1),
    TimerFired(Kind.TIMEOUT, "r", "p", "t", 2, key="t@loop.3", epoch=1),
    RunTimeout("r", "p"),
    RunTimeout("r", "p", epoch=2),
    ChildDone(PARENT, "child-run"),
    Notify("r", "p", "t", "t", 1, 0, "ann@example.com", "email", "request"),
    Notify("r", "p", "t", "t", 1, 1, "+15550100", "sms", "escalation", epoch=1, tries=3),
    Remind("r", "p", "t", "t", 1, 0, epoch=0),
    Redrive("r", 1),
    BranchTimeout("r", "p", "fan", "slow", "2026-01-01T00:00:00.000Z"),
    BranchTimeout("r", "p", "fan", "slow", "2026-01-01T00:00:00.000Z", suffix="@each.2", epoch=1),
    Migrate("r", 1, "p1", "p2"),
    Migrate("r", 2, "p1", "p2", reason="notify first"),
]


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_message_survives_the_trip_through_json(message):
    assert decode(json.loads(json.dumps(encode(message)))) == message


def test_the_wire_shape_is_the_one_earlier_releases_wrote():
    # Messages in flight during an upgrade were written by hand as these dicts: they must still decode,
    # and what is sent now must be the same shape (optional fields left out when empty).
    legacy = [
        {"k": "exec", "run": "r", "plan": "p", "task": "t", "attempt": 1},
        {"k": "exec", "run": "r", "plan": "p", "task": "t", "attempt": 2, "key": "t@l.0", "ctx": {"role": "x"},
         "epoch": 1, "watch": 1, "handed_back": 2},
        {"k": "wake", "run": "r", "plan": "p", "task": "t", "attempt": 1},
        {"k": "timeout", "run": "r", "plan": "p", "task": "t", "attempt": 1, "key": "a@b", "epoch": 3},
        {"k": "start", "run": "r", "plan": "p", "inputs": {"x": 1}},
        {"k": "start", "run": "r", "plan": "p", "inputs": {}, "parent": PARENT.to_dict()},
        {"k": "run_timeout", "run": "r", "plan": "p"},
        {"k": "run_timeout", "run": "r", "plan": "p", "epoch": 1},
        {"k": "child_done", **PARENT.to_dict(), "child": "c"},
        {"k": "notify", "run": "r", "plan": "p", "task": "t", "key": "t", "attempt": 1, "round": 0,
         "approver": "a", "channel": "email", "reason": "request", "epoch": 0},
        {"k": "notify", "run": "r", "plan": "p", "task": "t", "key": "t", "attempt": 1, "round": 0,
         "approver": "a", "channel": "email", "reason": "request", "epoch": 0, "try": 2},
        {"k": "remind", "run": "r", "plan": "p", "task": "t", "key": "t", "attempt": 1, "round": 1, "epoch": 0},
        {"k": "redrive", "run": "r", "epoch": 1},
    ]
    for raw in legacy:
        assert encode(decode(raw)) == raw


def test_a_key_equal_to_the_task_id_is_left_out_and_item_names_the_item():
    assert "key" not in encode(Exec("r", "p", "t", 1, key="t"))
    assert Exec("r", "p", "t", 1).item == "t" and Exec("r", "p", "t", 1, key="t@h").item == "t@h"


@pytest.mark.parametrize("raw, why", [
    ({"k": "exec", "run": "r", "plan": "p", "task": "t"}, "'attempt'"),
    ({"k": "exec", "run": "r", "plan": "p", "task": "t", "attempt": "one"}, "'attempt'"),
    ({"k": "exec", "run": "r", "plan": "p", "task": "t", "attempt": True}, "'attempt'"),
    ({"k": "exec", "run": "", "plan": "p", "task": "t", "attempt": 1}, "'run'"),
    ({"k": "teleport", "run": "r"}, "unknown message kind 'teleport'"),
    ({"run": "r"}, "unknown message kind None"),
    (["exec"], "a JSON object"),
    ({"k": "child_done", "run": "r", "plan": "p", "task": "t", "key": "t", "attempt": 1}, "'child'"),
])
def test_a_message_that_is_none_of_ours_is_refused_with_the_reason(raw, why):
    with pytest.raises(ValueError, match=why.replace("(", r"\(")):
        decode(raw)


def test_handing_back_and_retrying_count_on_a_copy():
    message = Exec("r", "p", "t", 1)
    assert handed_back(handed_back(message)).handed_back == 2 and message.handed_back == 0
    notify = Notify("r", "p", "t", "t", 1, 0, "a", "email", "request")
    assert retried(notify).tries == 2 and encode(retried(notify))["try"] == 2
