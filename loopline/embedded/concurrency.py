"""What lets the local runtime run Lambda invocations side by side, as AWS does.

- ``linearizable_moto()``: moto's backends check a condition, then write, without a lock, so two
  threads' conditional writes on one item could both pass, which DynamoDB never allows. Installed,
  every request moto serves is one atomic step (a lock around its request dispatch) and nothing
  more: requests of different threads interleave freely, as concurrent Lambdas' requests do.
- ``InvocationGate``: invocations hold it shared, so they run at once; ``with gate:`` holds it alone
  (waiting for running invocations, holding off new ones), for a test or a tool that drives the
  engine directly and wants no handler to run meanwhile. Reentrant for its holder.
- ``routed_stdout(sink)``: a handler's stdout goes to its own invocation's sink. Swapping
  ``sys.stdout`` per call (``contextlib.redirect_stdout``) is process-wide: two overlapping calls
  would restore each other's sinks and leave ``sys.stdout`` pointing at a closed one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

_moto_lock = threading.RLock()
_moto_guard = threading.Lock()
_moto_users = 0
_moto_original: Any = None
_moto_waiting = 0  # threads blocked on _moto_lock (changed under _moto_guard)


def install_linearizable_moto() -> None:
    """Make every moto request atomic (counted: each install needs its uninstall)."""
    global _moto_users, _moto_original
    from moto.core.botocore_stubber import BotocoreStubber

    with _moto_guard:
        _moto_users += 1
        if _moto_users > 1:
            return
        original = _moto_original = BotocoreStubber.process_request

        def atomic(self, request):
            with moto_step():
                return original(self, request)

        BotocoreStubber.process_request = atomic


@contextmanager
def moto_step() -> Iterator[None]:
    """One atomic step on moto's backends: what each request is once installed, and what a caller that
    reads a backend without a request (moto_streams.py) holds while it reads."""
    global _moto_waiting
    if not _moto_lock.acquire(blocking=False):
        with _moto_guard:
            _moto_waiting += 1
        _moto_lock.acquire()
        with _moto_guard:
            _moto_waiting -= 1
    try:
        yield
    finally:
        _moto_lock.release()
    if _moto_waiting:
        # Give up the GIL so that a thread waiting for moto gets it between this thread's
        # requests. Only then: a yield per request when no one waits made every request of a
        # lone pump dearer on a loaded machine (the scheduler may run another process).
        time.sleep(0)


def uninstall_linearizable_moto() -> None:
    global _moto_users, _moto_original
    from moto.core.botocore_stubber import BotocoreStubber

    with _moto_guard:
        if _moto_users == 0:
            return
        _moto_users -= 1
        if _moto_users == 0:
            BotocoreStubber.process_request = _moto_original
            _moto_original = None


@contextmanager
def linearizable_moto() -> Iterator[None]:
    install_linearizable_moto()
    try:
        yield
    finally:
        uninstall_linearizable_moto()


class InvocationGate:
    """Shared by invocations, exclusive for ``with gate:`` (see the module's docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None  # the exclusive holder's thread
        self._depth = 0  # its reentrant holds
        self._shared: dict[int, int] = {}  # thread -> shared holds
        self._waiting = 0  # exclusive requests waiting: new shared holds wait behind them

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            self._waiting += 1
            try:
                # This thread's own shared holds (a tool inside an invocation) do not block it.
                while self._owner is not None or sum(self._shared.values()) - self._shared.get(me, 0) > 0:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of an invocation gate this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def __enter__(self) -> InvocationGate:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            mine = self._owner == me or self._shared.get(me, 0) > 0
            while not mine and (self._owner is not None or self._waiting):
                self._cond.wait()
            self._shared[me] = self._shared.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._shared[me] -= 1
                if not self._shared[me]:
                    del self._shared[me]
                self._cond.notify_all()


class _StdoutRouter:
    """Installed as ``sys.stdout`` while at least one invocation runs; writes go to the calling
    thread's sink, or to what ``sys.stdout`` was before (other threads, the CLI's own output)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._local = threading.local()
        self._users = 0
        self._saved: IO[str] | None = None

    def _target(self) -> IO[str]:
        sinks = getattr(self._local, "sinks", None)
        return sinks[-1] if sinks else (self._saved or sys.__stdout__)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno...: the real stream's
        return getattr(self._target(), name)

    @contextmanager
    def to(self, sink: IO[str]) -> Iterator[None]:
        with self._guard:
            if self._users == 0:
                self._saved, sys.stdout = sys.stdout, self
            self._users += 1
        sinks = self._local.__dict__.setdefault("sinks", [])
        sinks.append(sink)
        try:
            yield
        finally:
            sinks.pop()
            with self._guard:
                self._users -= 1
                if self._users == 0:
                    sys.stdout, self._saved = self._saved, None


_router = _StdoutRouter()


def routed_stdout(sink: IO[str]):
    """``with routed_stdout(sink):`` this thread's prints go to ``sink`` (others' are unaffected)."""
    return _router.to(sink)
