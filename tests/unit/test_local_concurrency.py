"""loopline/embedded/concurrency.py: the gate that lets invocations overlap, and stdout per invocation.

Ordering, not timing: each test waits on events with a bound only so that a bug fails it instead
of hanging it."""

from __future__ import annotations

import io
import sys
import threading

from loopline.embedded.concurrency import InvocationGate, routed_stdout

BOUND = 10.0


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_invocations_hold_the_gate_together():
    gate = InvocationGate()
    inside, leave = threading.Barrier(2, timeout=BOUND), threading.Event()

    def invocation():
        with gate.shared():
            inside.wait()  # both are inside at once, or this times out
            leave.wait(BOUND)

    threads = [in_thread(invocation) for _ in range(2)]
    leave.set()
    for thread in threads:
        thread.join(BOUND)
    assert not any(thread.is_alive() for thread in threads) and not inside.broken


def test_holding_the_gate_alone_waits_for_invocations_and_holds_off_new_ones():
    gate = InvocationGate()
    running, finish, exclusive, order = threading.Event(), threading.Event(), threading.Event(), []

    def invocation():
        with gate.shared():
            running.set()
            finish.wait(BOUND)
            order.append("first invocation ends")

    def tool():
        with gate:
            exclusive.set()
            order.append("tool holds the gate")
            with gate.shared():  # the holder may itself invoke (reentrant)
                order.append("tool invokes")

    def late_invocation():
        with gate.shared():
            order.append("late invocation")

    first = in_thread(invocation)
    assert running.wait(BOUND)
    holder = in_thread(tool)
    for _ in range(int(BOUND / 0.01)):  # until the tool is queued behind the running invocation
        if gate._waiting:
            break
        exclusive.wait(0.01)
    assert gate._waiting == 1 and not exclusive.is_set()
    late = in_thread(late_invocation)  # comes while the tool waits: goes after it
    finish.set()
    for thread in (first, holder, late):
        thread.join(BOUND)
    assert order == ["first invocation ends", "tool holds the gate", "tool invokes", "late invocation"]


def test_overlapping_invocations_leave_stdout_as_it_was():
    original = sys.stdout
    sinks = [io.StringIO(), io.StringIO()]
    entered, first_may_leave = threading.Barrier(2, timeout=BOUND), threading.Event()
    second_left = threading.Event()

    def first():
        with routed_stdout(sinks[0]):
            entered.wait()
            print("from the first")
            first_may_leave.wait(BOUND)

    def second():
        with routed_stdout(sinks[1]):
            entered.wait()
            print("from the second")
        second_left.set()

    threads = [in_thread(first), in_thread(second)]
    assert second_left.wait(BOUND)  # the second leaves first: not the order they came in
    print_during = sys.stdout is not original
    first_may_leave.set()
    for thread in threads:
        thread.join(BOUND)
    assert print_during  # still routed while the first runs
    assert sys.stdout is original
    assert sinks[0].getvalue() == "from the first\n" and sinks[1].getvalue() == "from the second\n"
