"""The supervisor: our own small program between the engine and one attempt of task code.

The engine starts it (``python -I -S supervisor.py``) with an empty environment,
in a session of its own, and writes one plan on its stdin (``marshal``: the engine
and the supervisor are the same interpreter, and marshal costs no import)::

    {"argv", "env", "cwd", "enter_as_task", "uid", "gid", "limits": {RLIMIT_NAME: n},
     "timeout", "fds": {"stdin", "stdout", "stderr", "result"}}

It makes itself a child subreaper (every orphaned descendant of the task is
reparented to it, not to init) and non-dumpable (a task running as the same user
cannot read its memory or /proc entries), starts the task in a new session as
``uid``/``gid`` with no supplementary groups and the resource limits, waits for it
up to ``timeout``, and then, whether it timed out or returned, kills the task's
process group and every process still descending from it, until none is left. Its
report, on stdout, is::

    {"exit": returncode, "timed_out": bool, "killed": n}  or  {"start_error": {"where", "errno", "message"}}

It is a separate process so that forking, switching user and waiting happen in a
small single-threaded program, not in the multi-threaded engine. It imports only
built-in modules and ctypes (for prctl), so it starts in a few milliseconds.
"""

import _signal  # the C half of `signal`: resetting two dispositions needs no enum machinery
import ctypes
import marshal
import os
import resource
import select
import sys
import time

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
SIGKILL = 9


def _prctl(option, value):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _exec(argv, env):
    """execvpe with the task's own PATH, looked up as the task user."""
    if "/" in argv[0]:
        os.execve(argv[0], argv, env)
    denied = None
    for directory in (env.get("PATH") or "/usr/bin:/bin").split(":"):
        try:
            os.execve(os.path.join(directory or ".", argv[0]), argv, env)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError as exc:
            denied = exc
    raise denied or FileNotFoundError(2, "No such file or directory")


def _become_task(plan, report_fd):
    """In the forked process: become the task, then exec it. Never returns."""
    where = "setup"
    try:
        fds = plan["fds"]
        os.setsid()  # a session and process group of its own
        for target, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            os.dup2(fds[name], target)
        keep = {0, 1, 2, report_fd, fds.get("result")}
        for fd in {fds["stdin"], fds["stdout"], fds["stderr"]} - keep:
            os.close(fd)
        # Python ignores these two; a task's program expects the default (SIGXFSZ stops a runaway writer).
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)
        if not plan["enter_as_task"]:
            where = "cwd"
            os.chdir(plan["cwd"])
            where = "setup"
        if plan["uid"] is not None:
            os.setgroups([])
            os.setresgid(plan["gid"], plan["gid"], plan["gid"])
            os.setresuid(plan["uid"], plan["uid"], plan["uid"])
        for name, value in plan["limits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        if plan["enter_as_task"]:
            where = "cwd"
            os.chdir(plan["cwd"])  # with the task's own permissions: a path it could not reach fails
        where = "exec"
        _exec(plan["argv"], plan["env"])
    except OSError as exc:
        os.write(report_fd, marshal.dumps({"where": where, "errno": exc.errno or 0, "message": exc.strerror or
                                           str(exc)}))
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the forked process must not go on
        os.write(report_fd, marshal.dumps({"where": where, "errno": 0, "message": repr(exc)}))
    os._exit(127)


def _start(plan):
    """The task's pid, or the reason it could not start (reported through a close-on-exec pipe)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _become_task(plan, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        failure = pipe.read()  # empty: exec succeeded and closed the pipe
    if failure:
        os.waitpid(pid, 0)
        return None, marshal.loads(failure)
    return pid, None


def _wait(pid, timeout):
    """True when the task ended within ``timeout`` (it is then an unreaped zombie), False when time ran out."""
    deadline = time.monotonic() + timeout
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    try:
        while True:
            left = deadline - time.monotonic()
            if handle is not None:
                if left <= 0:
                    return False
                if select.select([handle], [], [], left)[0]:
                    return True
            else:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    return True
                if left <= 0:
                    return False
                time.sleep(min(0.01, left))
    finally:
        if handle is not None:
            os.close(handle)


def _children():
    """Our direct children (orphans reparented to us included)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        pass
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            found.append(int(name))
    return found


def _kill_descendants():
    """SIGKILL every process below us until none is left; how many there were.

    A killed process's own children are reparented to us before it can be reaped,
    so each round sees the next generation; the loop ends when the kernel says we
    have no child at all (ECHILD), the one answer that cannot race a fork."""
    killed = 0
    while True:
        pids = _children()
        for pid in pids:
            try:
                os.kill(pid, SIGKILL)  # still our unreaped child: the pid cannot have been reused
                killed += 1
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        try:
            if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG) is None and not pids:
                time.sleep(0.001)  # a child exists that the listing missed: look again
        except ChildProcessError:
            return killed


def supervise(plan):
    pid, failure = _start(plan)
    if failure is not None:
        return {"start_error": failure}
    finished = _wait(pid, float(plan["timeout"]))
    try:
        # The task's group first, while its leader is an unreaped zombie (its pid cannot be reused).
        os.killpg(pid, SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _, status = os.waitpid(pid, 0)
    return {"exit": os.waitstatus_to_exitcode(status), "timed_out": not finished, "killed": _kill_descendants()}


def main():
    plan = marshal.loads(sys.stdin.buffer.read())
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    report = supervise(plan)
    sys.stdout.buffer.write(marshal.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
