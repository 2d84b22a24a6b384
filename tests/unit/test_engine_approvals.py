"""Human approvals (issue #4): per-approver links, quorum, records, refused links, escalation, notifications."""

from __future__ import annotations

import json

import pytest

from infra.engine import LinkError
from infra.tasks import outbox
from tests.unit.test_engine_semantics import drive, settle, start

BOARD = """
workflow:
  metadata: {id: board}
  tasks:
    - id: vote
      type: approval
      config:
        title: "Fund project ${inputs.name}?"
        approvers: [ann@example.com, bob@example.com, cy@example.com]
        required_approvals: %(quorum)s
        timeout: 1d
        %(extra)s
    - {id: next, type: python, depends_on: [vote], config: {code: "result = tasks['vote']['output']['decision']"}}
"""


def board(quorum=2, extra=""):
    return BOARD % {"quorum": quorum, "extra": extra}


def links(local, run_id):
    return {a["approver"]: a["url"].rsplit("/", 1)[1] for a in local.engine.describe_run(run_id)["approvals"]}


@pytest.fixture(autouse=True)
def empty_outbox():
    outbox.clear()


def test_each_approver_gets_a_link_and_the_quorum_decides(local, clock):
    run_id = start(local, board(), {"name": "atlas"})
    tokens = links(local, settle(local, run_id)["run_id"])
    assert set(tokens) == {"ann@example.com", "bob@example.com", "cy@example.com"}
    assert len(set(tokens.values())) == 3  # a link per approver
    first = local.engine.decide(tokens["ann@example.com"], "APPROVED", "yes, says ann")
    assert first["outcome"] == "PENDING"
    view = settle(local, run_id)
    assert view["tasks"]["vote"]["status"] == "WAITING"
    assert {a["approver"] for a in view["approvals"]} == {"bob@example.com", "cy@example.com"}
    # Bob's link shows how many decided, not who said what: ann's vote and comments are hers.
    info = local.engine.approval_info(tokens["bob@example.com"])
    assert info["decisions_so_far"] == 1 and info["approver"] == "bob@example.com"
    assert "votes" not in info and "says ann" not in json.dumps(info)
    assert local.engine.decide(tokens["cy@example.com"], "APPROVED", "fine by me")["outcome"] == "APPROVED"
    view = drive(local, run_id, clock)
    out = view["tasks"]["vote"]["output"]
    assert out["decision"] == "APPROVED" and out["approver"] == "cy@example.com" and out["comments"] == "fine by me"
    assert [(v["approver"], v["decision"]) for v in out["votes"]] == [
        ("ann@example.com", "APPROVED"), ("cy@example.com", "APPROVED")]
    assert view["tasks"]["next"]["output"] == "APPROVED"
    with pytest.raises(LinkError) as late:
        local.engine.decide(tokens["bob@example.com"], "REJECTED")
    assert late.value.status == 410  # the request is decided: bob's link no longer works


def test_any_rejection_decides_unless_configured(local, clock):
    run_id = start(local, board(), {"name": "x"})
    tokens = links(local, settle(local, run_id)["run_id"])
    assert local.engine.decide(tokens["bob@example.com"], "REJECTED", "too costly")["outcome"] == "REJECTED"
    view = drive(local, run_id, clock)
    assert view["tasks"]["vote"]["output"]["decision"] == "REJECTED"
    two_needed = start(local, board(extra="required_rejections: 2"), {"name": "y"})
    tokens = links(local, settle(local, two_needed)["run_id"])
    assert local.engine.decide(tokens["bob@example.com"], "REJECTED")["outcome"] == "PENDING"


def test_refused_links_are_4xx_leave_the_approval_unchanged_and_are_recorded(local, clock):
    run_id = start(local, board(), {"name": "z"})
    tokens = links(local, settle(local, run_id)["run_id"])
    with pytest.raises(LinkError) as other:
        local.engine.decide(tokens["ann@example.com"], "APPROVED", approver="bob@example.com")
    assert other.value.status == 403
    local.engine.decide(tokens["ann@example.com"], "APPROVED")
    with pytest.raises(LinkError) as replay:
        local.engine.decide(tokens["ann@example.com"], "APPROVED")
    assert replay.value.status == 410
    with pytest.raises(LinkError) as tampered:
        local.engine.decide(tokens["bob@example.com"][:-3] + "abc", "APPROVED")
    assert tampered.value.status == 404
    for bad, status in (("MAYBE", 400), ("APPROVED", 400)):
        with pytest.raises(LinkError) as wrong:
            local.engine.decide(tokens["bob@example.com"], bad, comments="x" * 20_000 if bad == "APPROVED" else None)
        assert wrong.value.status == status
    view = settle(local, run_id)
    assert view["tasks"]["vote"]["status"] == "WAITING"
    assert [v["approver"] for v in local.engine.ballots.votes(run_id, local.store.list_tasks(run_id)["vote"])] == [
        "ann@example.com"]
    assert [r["reason"] for r in view["refused_links"]] == ["a link used in another approver's name",
                                                            "a used or expired link"]


def test_timeout_escalates_to_the_next_approvers_with_a_new_deadline(local, clock):
    text = board(quorum=1, extra="escalation_policy: {action: escalate, next_approvers: [cfo@example.com], "
                                 "timeout: 2d}")
    run_id = start(local, text, {"name": "late"})
    old = links(local, settle(local, run_id)["run_id"])
    clock.advance(86401)
    view = settle(local, run_id)
    assert view["tasks"]["vote"]["status"] == "WAITING"
    assert [(a["approver"], a["round"]) for a in view["approvals"]] == [("cfo@example.com", 1)]
    with pytest.raises(LinkError) as expired:
        local.engine.decide(old["ann@example.com"], "APPROVED")
    assert expired.value.status == 410
    sent = [e["request"]["to"] for e in outbox.entries("email")]
    assert ["cfo@example.com"] in sent and ["ann@example.com"] in sent
    local.engine.decide(links(local, run_id)["cfo@example.com"], "APPROVED", "escalated and approved")
    view = drive(local, run_id, clock)
    assert view["tasks"]["vote"]["output"]["approver"] == "cfo@example.com"


def test_an_escalated_request_that_times_out_again_is_timed_out(local, clock):
    text = board(quorum=1, extra="escalation_policy: {action: escalate, next_approvers: [cfo@example.com], "
                                 "timeout: 1h}")
    view = drive(local, start(local, text, {"name": "ignored"}), clock)
    assert view["tasks"]["vote"]["output"]["decision"] == "TIMED_OUT"


def test_notifications_carry_each_approvers_link_and_reminders_go_to_who_has_not_decided(local, clock):
    run_id = start(local, board(quorum=3, extra="reminder: 2h"), {"name": "mail"})
    tokens = links(local, settle(local, run_id)["run_id"])
    mails = {tuple(e["request"]["to"]): e["request"]["body"] for e in outbox.entries("email")}
    for who, token in tokens.items():
        assert token in mails[(who,)]  # each email holds that approver's own link
    local.engine.decide(tokens["ann@example.com"], "APPROVED")
    outbox.clear()
    clock.advance(86400 - 7200 + 1)
    settle(local, run_id)
    reminded = sorted(e["request"]["to"][0] for e in outbox.entries("email"))
    assert reminded == ["bob@example.com", "cy@example.com"]
    assert all(e["request"]["subject"].startswith("Reminder") for e in outbox.entries("email"))


def test_phone_approvers_get_a_text_with_their_link_and_a_call_that_says_where_it_went(local, clock):
    text = board(quorum=1, extra="channels: [sms, voice]\n        description: Budget for Q3").replace(
        "[ann@example.com, bob@example.com, cy@example.com]", "['+15550001', ann@example.com]")
    run_id = start(local, text, {"name": "phone"})
    tokens = links(local, settle(local, run_id)["run_id"])
    [texted] = outbox.entries("sms")
    assert texted["request"]["to"] == "+15550001" and tokens["+15550001"] in texted["request"]["body"]
    [called] = outbox.entries("voice")
    assert called["request"]["to"] == "+15550001"
    message = called["request"]["message"]
    assert "Fund project phone?" in message and "Budget for Q3" in message and "sent by sms" in message
    assert tokens["+15550001"] not in message  # a call cannot carry a link
    assert not outbox.entries("email")  # ann has no phone number and email is not a channel here


def test_a_failing_channel_never_loses_the_request(clock, caplog):
    from infra.tasks.registry import TaskTypes
    from loopline.memory.local_mode import LocalMode

    # The deployment's webhook, read once at start as a worker reads it: nothing listens there.
    types = TaskTypes.from_env({"LOOPLINE_APPROVAL_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    local = LocalMode(clock=clock, inline_code=True, task_types=types)
    try:
        run_id = start(local, board(quorum=1, extra="channels: [webhook]"), {"name": "hooked"})
        view = settle(local, run_id)
        for _ in range(8):  # the retries, moved forward by the clock
            clock.advance(60)
            view = settle(local, run_id)
    finally:
        local.close()
    assert view["tasks"]["vote"]["status"] == "WAITING" and len(view["approvals"]) == 3
    assert caplog.text.count("by webhook failed (try 5)") == 3  # each approver's, tried to the last


@pytest.mark.parametrize("approver", [35176100636835975168, {"name": "ann@example.com"}, ["ann@example.com"], True])
def test_an_approver_that_is_not_a_name_is_refused_and_decides_nothing(local, clock, approver):
    """Found by tests/e2e/test_openapi_fuzz.py: a non-string approver was ignored and the link decided."""
    run_id = start(local, board(), {"name": "z"})
    tokens = links(local, settle(local, run_id)["run_id"])
    for decide in (lambda: local.engine.decide(tokens["ann@example.com"], "APPROVED", approver=approver),
                   lambda: local.engine.decide_for(run_id, "vote", "APPROVED", approver=approver)):
        with pytest.raises(LinkError) as refused:
            decide()
        assert refused.value.status == 400 and "approver must be a string" in str(refused.value)
    assert local.engine.ballots.votes(run_id, local.store.list_tasks(run_id)["vote"]) == []
    assert len(links(local, run_id)) == 3  # every link still unused


MAPPED = """
workflow:
  metadata: {id: mapped}
  tasks:
    - id: ask
      type: approval
      config: {title: "Ship it?", approvers: [ann@example.com, bob@example.com], required_approvals: 1}
      outputs:
        - {name: ok, value: "${response.decision == 'APPROVED'}"}
"""


@pytest.mark.parametrize("decision", ["APPROVED", "REJECTED"])
def test_the_answer_says_the_decision_when_the_task_maps_its_output(local, clock, decision):
    """Found by the /graph/resume route: an approval task with ``outputs`` answered ``outcome:
    COMPLETED`` (its status), the output holding no ``decision`` any more."""
    run_id = start(local, MAPPED)
    tokens = links(local, settle(local, run_id)["run_id"])
    answer = local.engine.decide(tokens["ann@example.com"], decision)
    assert answer["outcome"] == decision
    view = drive(local, run_id, clock)
    assert view["tasks"]["ask"]["output"] == {"ok": decision == "APPROVED"}
    # A late second decider is told how the request was decided, not the task's status.
    with pytest.raises(LinkError) as late:
        local.engine.decide(tokens["bob@example.com"], "APPROVED")
    assert late.value.status == 410
