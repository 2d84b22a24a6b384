"""The doorbell an idle local pump sleeps on (loopline/doorbell.py): rings, due times, and its limit."""

from __future__ import annotations

import threading
import time

from loopline.doorbell import Doorbell


def timed_sleep(bell: Doorbell, longest: float | None) -> tuple[bool, float]:
    started = time.monotonic()
    woke = bell.sleep(longest)
    return woke, time.monotonic() - started


def test_nothing_rung_sleeps_the_whole_limit():
    bell = Doorbell(idle_limit=0.2)
    bell.arm()
    woke, took = timed_sleep(bell, 0.2)
    assert woke is False and took >= 0.19


def test_a_ring_after_arm_ends_the_next_sleep_at_once():
    """What rings while the pump looks for work (between arm and sleep) is not missed."""
    bell = Doorbell()
    bell.arm()
    bell.ring()
    woke, took = timed_sleep(bell, 30)
    assert woke is True and took < 5


def test_arm_forgets_a_ring_from_before_the_look():
    bell = Doorbell()
    bell.ring()
    bell.arm()  # the pass about to look will see whatever that ring announced
    woke, _ = timed_sleep(bell, 0.1)
    assert woke is False


def test_a_ring_from_another_thread_wakes_the_sleeper():
    bell = Doorbell()
    bell.arm()
    threading.Timer(0.2, bell.ring).start()
    woke, took = timed_sleep(bell, 30)
    assert woke is True and took < 10


def test_ring_in_wakes_at_its_time_and_only_once():
    bell = Doorbell()
    bell.arm()
    bell.ring_in(0.3)
    woke, took = timed_sleep(bell, 30)
    assert woke is True and 0.25 <= took < 10
    bell.arm()
    assert timed_sleep(bell, 0.1)[0] is False  # that time is spent


def test_an_earlier_due_time_set_during_a_sleep_shortens_it():
    bell = Doorbell()
    bell.arm()
    bell.ring_in(60)
    threading.Timer(0.1, bell.ring_in, args=(0.1,)).start()
    woke, took = timed_sleep(bell, 30)
    assert woke is True and took < 10


def test_a_slot_keeps_only_its_latest_time():
    """What a pump works out on every pass (the next schedule's time) replaces itself, not piles up."""
    bell = Doorbell()
    bell.arm()
    bell.ring_in(0.1, slot="schedules")
    bell.ring_in(60, slot="schedules")  # worked out again: later now
    assert timed_sleep(bell, 0.5)[0] is False
    bell.ring_in(0.1, slot="schedules")
    woke, took = timed_sleep(bell, 30)
    assert woke is True and took < 10
    bell.clear_slot("schedules")
    bell.arm()
    assert timed_sleep(bell, 0.2)[0] is False


def test_the_default_limit_is_the_idle_limit():
    bell = Doorbell(idle_limit=0.1)
    bell.arm()
    woke, took = timed_sleep(bell, None)
    assert woke is False and took < 5


def test_ring_by_keeps_the_earliest_time_of_its_slot():
    """Writes in a row (a transition writes several items) wake the pump once, after the first."""
    bell = Doorbell()
    bell.arm()
    bell.ring_by(0.1, "writes")
    bell.ring_by(30, "writes")  # later: does not push the wake away
    woke, took = timed_sleep(bell, 5)
    assert woke is True and took < 2


def test_a_table_write_wakes_the_pump_a_moment_later_for_the_stream():
    """A DynamoDB write puts records on the table's stream; nothing else would wake the stream poller."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        bell = Doorbell()
        bell.attach(ddb)
        bell.arm()
        ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})  # a read: no records
        assert timed_sleep(bell, 0.5)[0] is False
        bell.arm()
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
        woke, took = timed_sleep(bell, 5)
        assert woke is True and took < 2
