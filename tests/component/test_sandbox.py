"""Task code (python, shell, custom) runs outside the engine's trust boundary (docs/security.md).

Each test drives a real task through the engine's own entry points (a workflow in
local mode, or ``TaskTypes.run`` as the engine calls it) and checks what the
task's code could see or leave behind: the engine's environment, the key file,
its user, its limits, processes that outlive it, its printed text.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from infra.sandbox.launch import run_code
from infra.sandbox.request import MAX_PRINTED, CodeReply, CodeRequest
from infra.sandbox.settings import SandboxSettings
from loopline.memory.local_mode import LocalMode
from statemachine.compiler import compile_workflow
from tests.unit.test_task_settings import failure, run_type, task_env  # noqa: F401

CANARY = "canary-7f3a9c"
HANDLERS = "tests.component.sandbox_handlers"
ROOT = os.geteuid() == 0
as_root = pytest.mark.skipif(not ROOT, reason="the user switch needs the engine to run as root")

PEEK = """
import os
def peek(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("latin-1")
    except OSError as exc:
        return "refused: " + type(exc).__name__
"""


def run_task(task: dict, inputs: dict | None = None, timeout: float = 60.0) -> dict:
    """One task in a workflow of its own, run to its end in local mode; the task's view."""
    text = yaml.safe_dump({"workflow": {"metadata": {"id": "sandbox"}, "tasks": [task]}})
    mode = LocalMode()
    run_id = mode.engine.start_run(compile_workflow(text, "sandbox.yaml"), inputs or {})
    assert mode.run_until(lambda: mode.engine.describe_run(run_id)["status"] != "RUNNING", timeout=timeout)
    return mode.engine.describe_run(run_id)["tasks"][task["id"]]


def python(code: str, inputs: dict | None = None, **task) -> dict:
    return run_task({"id": "code", "type": "python", "config": {"code": code}, **task}, inputs)


@pytest.fixture
def canary(task_env, monkeypatch):  # noqa: F811
    """A secret in the engine's environment, as a server's credentials would be."""
    monkeypatch.setenv("LOOPLINE_CANARY", CANARY)
    return CANARY


@pytest.fixture
def shared_dir():
    """A directory every user may write, where a task's processes leave what the test then reads."""
    path = Path(tempfile.mkdtemp(prefix="loopline-sandbox-test-"))
    path.chmod(0o1777)
    yield path
    for pid_file in path.glob("*.pid"):  # on a broken sandbox, leave nothing running behind
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    shutil.rmtree(path)


@pytest.fixture
def key_file():
    """A root-only file like .loopline/link.key (mode 0600) in a directory anyone may enter, next to a
    world-readable file that proves the directory itself is reachable."""
    folder = Path(tempfile.mkdtemp(prefix="loopline-key-test-"))
    folder.chmod(0o755)
    secret = folder / "link.key"
    secret.write_text("the-signing-key\n")
    secret.chmod(0o600)
    public = folder / "public.txt"
    public.write_text("anyone may read this\n")
    public.chmod(0o644)
    yield secret, public
    secret.unlink()
    public.unlink()
    folder.rmdir()


# ---------------------------------------------------------------- the engine's secrets


def test_python_code_sees_nothing_of_the_engines_environment(canary):
    view = python(PEEK + "result = {'environ': dict(os.environ), 'engine': peek(f\"/proc/{inputs['engine']}/environ\"),"
                         " 'parent': peek(f'/proc/{os.getppid()}/environ')}", {"engine": os.getpid()})
    assert view["status"] == "COMPLETED", view
    seen = view["output"]
    assert set(seen["environ"]) <= {"PATH", "HOME", "TMPDIR", "LC_CTYPE"}
    assert canary not in json.dumps(seen)
    assert seen["engine"].startswith("refused")


def test_shell_code_sees_nothing_of_the_engines_environment(canary):
    script = 'env; cat /proc/$PPID/environ; cat "/proc/$1/environ"; true'
    result = run_type("shell", {"command": ["sh", "-c", script, "sh", str(os.getpid())]})
    assert "PATH=" in result["stdout"]
    assert canary not in result["stdout"] + result["stderr"]
    assert "Permission denied" in result["stderr"]


def test_custom_code_runs_in_a_process_of_its_own_without_the_engines_environment(canary, monkeypatch):
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HANDLERS)
    seen = run_type("custom", {"handler": f"{HANDLERS}:look_around", "parameters": {"engine_pid": os.getpid()}})
    assert seen["pid"] != os.getpid()
    assert canary not in json.dumps(seen)
    assert seen["engine_environ"].startswith("refused")


@as_root
def test_task_code_cannot_read_a_root_only_file_like_the_link_key(task_env, key_file, monkeypatch):  # noqa: F811
    secret, public = key_file
    view = python(PEEK + "result = [peek(inputs['secret']), peek(inputs['public'])]",
                  {"secret": str(secret), "public": str(public)})
    assert view["output"] == ["refused: PermissionError", "anyone may read this\n"]
    error = failure("shell", {"command": ["cat", str(public), str(secret)]})
    assert error.error_type == "ShellError" and "Permission denied" in error.message
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HANDLERS)
    seen = run_type("custom", {"handler": f"{HANDLERS}:look_around",
                               "parameters": {"engine_pid": os.getpid(), "secret_file": str(secret)}})
    assert seen["secret"] == "refused: PermissionError"


@as_root
def test_task_code_runs_as_nobody_when_the_engine_is_root(task_env, monkeypatch):  # noqa: F811
    nobody = pwd.getpwnam("nobody")
    assert python("import os\nresult = [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()]")["output"] == [
        nobody.pw_uid, nobody.pw_uid, nobody.pw_gid, []]
    assert run_type("shell", {"command": ["id", "-u"]})["stdout"] == str(nobody.pw_uid)
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HANDLERS)
    assert run_type("custom", {"handler": f"{HANDLERS}:look_around",
                               "parameters": {"engine_pid": os.getpid()}})["uid"] == nobody.pw_uid


# ---------------------------------------------------------------- limits


def test_memory_beyond_the_limit_fails_the_task_with_a_clear_error(task_env):  # noqa: F811
    view = python("block = bytearray(2 * 1024 ** 3)")
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "MemoryError" and "1024 MiB" in view["error"]["message"]
    error = failure("shell", {"command": ["python3", "-c", "bytearray(2 * 1024 ** 3)"]})
    assert error.error_type == "ShellError" and "MemoryError" in error.message


def test_a_file_beyond_the_size_limit_fails_the_task_with_a_clear_error(task_env):  # noqa: F811
    target = "/tmp/loopline-sandbox-big-file"  # where a task without TMPDIR would leave it
    try:
        view = python("import os\nwith open(os.environ.get('TMPDIR', '/tmp') + '/loopline-sandbox-big-file', 'wb') "
                      "as f:\n    f.write(bytes(65 * 1024 * 1024))")
        script = 'T="$TMPDIR"; [ -n "$T" ] || T=/tmp; head -c 70000000 /dev/zero > "$T/loopline-sandbox-big-file"'
        error = failure("shell", {"command": ["sh", "-c", script]})
    finally:
        if os.path.exists(target):
            os.unlink(target)
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "OSError" and "64 MiB" in view["error"]["message"]
    assert error.error_type == "ShellError" and "SIGXFSZ" in error.message and "64 MiB" in error.message


# ---------------------------------------------------------------- nothing outlives its task

BACKGROUND_SHELL = """
beat='echo $$ > "$1/$2.tmp"; mv "$1/$2.tmp" "$1/$2.pid"; while :; do echo x >> "$1/$2"; sleep 0.05; done'
(sh -c "$beat" sh "$1" child &)             # orphaned at once: a double fork
(setsid sh -c "$beat" sh "$1" daemon &)     # a double-forked daemon in a session of its own
sh -c "$beat" sh "$1" forked &              # a plain background child
while [ ! -e "$1/child.pid" ] || [ ! -e "$1/daemon.pid" ] || [ ! -e "$1/forked.pid" ]; do sleep 0.01; done
"""

BACKGROUND_PYTHON = """
import os, time
folder = inputs["dir"]
def beat(name):
    with open(f"{folder}/{name}.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(f"{folder}/{name}.tmp", f"{folder}/{name}.pid")
    while True:
        with open(f"{folder}/{name}", "a") as f:
            f.write("x")
        time.sleep(0.05)
if os.fork() == 0:
    beat("forked")
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        beat("daemon")
    os._exit(0)
while not all(os.path.exists(f"{folder}/{n}.pid") for n in ("forked", "daemon")):
    time.sleep(0.01)
"""


def _all_gone(folder: Path, names: tuple[str, ...]) -> None:
    """Each background process the task started is gone, and its heartbeat file has stopped growing."""
    def size(name: str) -> int:  # -1: killed before its first heartbeat (it writes its pid first)
        return (folder / name).stat().st_size if (folder / name).exists() else -1

    pids = {name: int((folder / f"{name}.pid").read_text()) for name in names}
    sizes = {name: size(name) for name in names}
    time.sleep(0.4)  # several heartbeats' worth: a survivor would have written meanwhile
    assert {name: size(name) for name in names} == sizes
    for name, pid in pids.items():
        assert not os.path.exists(f"/proc/{pid}"), f"{name} ({pid}) outlived its task"


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["returns", "times out"])
def test_no_process_of_a_shell_task_outlives_it(task_env, shared_dir, ending):  # noqa: F811
    script = BACKGROUND_SHELL + ("sleep 30" if ending == "times out" else "echo started")
    config = {"command": ["sh", "-c", script, "sh", str(shared_dir)], "timeout": "3s"}
    if ending == "times out":
        assert failure("shell", config).error_type == "TaskTimeout"
    else:
        assert run_type("shell", config)["stdout"] == "started"
    _all_gone(shared_dir, ("child", "daemon", "forked"))


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["returns", "times out"])
def test_no_process_of_a_python_task_outlives_it(task_env, shared_dir, ending):  # noqa: F811
    code = BACKGROUND_PYTHON + ("time.sleep(30)" if ending == "times out" else "result = 'started'")
    view = python(code, {"dir": str(shared_dir)}, timeout="3s")
    if ending == "times out":
        assert view["error"]["type"] == "TaskTimeout", view
    else:
        assert view["output"] == "started", view
    _all_gone(shared_dir, ("forked", "daemon"))


def test_a_python_task_that_runs_too_long_is_a_task_timeout(task_env):  # noqa: F811
    view = python("import time\ntime.sleep(10)", timeout="300ms")
    assert view["status"] == "FAILED" and view["error"]["type"] == "TaskTimeout"


# ---------------------------------------------------------------- results and printed text


def test_print_in_a_python_task_is_printed_text_not_a_crash(task_env):  # noqa: F811
    view = python("print('hello from the task')\nimport sys\nprint('to stderr', file=sys.stderr)\nresult = 42")
    assert view["status"] == "COMPLETED", view
    assert view["output"] == 42


def test_a_result_holding_nan_is_an_error_of_the_task(task_env):  # noqa: F811
    view = python("result = {'ratio': float('nan')}")
    assert view["status"] == "FAILED"
    assert view["error"]["type"] == "InvalidResult"


# ---------------------------------------------------------------- custom: deny by default


def test_a_custom_handler_is_refused_unless_its_module_is_allowed(task_env, monkeypatch):  # noqa: F811
    config = {"handler": f"{HANDLERS}:look_around", "parameters": {"engine_pid": os.getpid()}}
    error = failure("custom", config)  # LOOPLINE_CUSTOM_MODULES unset: nothing is allowed
    assert error.error_type == "CustomHandlerError"
    assert HANDLERS in error.message and "LOOPLINE_CUSTOM_MODULES" in error.message
    for setting in ("tests.unit", "tests.component.sandbox", "subprocess, os"):
        monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", setting)
        assert failure("custom", config).error_type == "CustomHandlerError"
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.component")
    assert run_type("custom", config)["pid"] != os.getpid()


def test_an_allowed_module_lends_only_its_own_functions(task_env, monkeypatch):  # noqa: F811
    """The module is allowed, but getoutput is subprocess's, imported there: refused in the task's process."""
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", "tests.component")
    error = failure("custom", {"handler": f"{HANDLERS}:getoutput", "parameters": {"cmd": "id"}})
    assert error.error_type == "CustomHandlerError" and "'subprocess'" in error.message, error.message
    assert run_type("custom", {"handler": f"{HANDLERS}:peek", "parameters": {"path": "/nonexistent"}}) == \
        "refused: FileNotFoundError"


def test_subprocess_and_the_key_loader_cannot_be_named_by_default(task_env):  # noqa: F811
    for handler in ("subprocess:getoutput", "loopline.embedded.keyfile:local_link_key", "os:getenv"):
        error = failure("custom", {"handler": handler, "parameters": {}})
        assert error.error_type == "CustomHandlerError", handler


# ---------------------------------------------------------------- shell: a value stays one argument


@pytest.mark.parametrize("value", ["a b --flag", "it's \"quoted\"; rm -rf / && echo $(id)", "  spaced  ", ""])
def test_a_value_in_a_string_command_stays_one_argument(task_env, value):  # noqa: F811
    view = run_task({"id": "echo", "type": "shell", "config": {"command": "printf '[%s]' ${inputs.x}"}}, {"x": value})
    assert view["status"] == "COMPLETED", view
    assert view["output"]["stdout"] == f"[{value}]"


def test_expressions_with_spaces_and_quotes_inside_stay_whole(task_env):  # noqa: F811
    command = "printf '[%s]' ${inputs['the key']} \"${format(inputs.n, '0.00')} units\" x${inputs.n}y"
    view = run_task({"id": "echo", "type": "shell", "config": {"command": command}}, {"the key": "a b", "n": 3.14159})
    assert view["output"]["stdout"] == "[a b][3.14 units][x3.14159y]", view


def run_configured(request: CodeRequest) -> CodeReply:
    """Run ``request`` with the sandbox settings of this process's environment, as the task runner's
    handler reads them."""
    return run_code(request, SandboxSettings.from_env(os.environ))


def test_what_python_and_custom_code_print_comes_back_bounded(task_env, monkeypatch):  # noqa: F811
    reply = run_configured(CodeRequest(kind="python", task_id="t", run_id="r", timeout=60,
                                 config={"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\nx = 1"}))
    assert (reply.error, reply.output, reply.printed) == (None, {"x": 1}, "out\nerr\n")
    reply = run_configured(CodeRequest(kind="python", task_id="t", run_id="r", timeout=60,
                                 config={"code": "for i in range(100000):\n    print(f'line {i}')"}))
    assert reply.error is None
    assert len(reply.printed) <= MAX_PRINTED and reply.printed.endswith("line 99999\n")
    assert "bytes cut]" in reply.printed  # what was cut is said, not hidden
    monkeypatch.setenv("LOOPLINE_CUSTOM_MODULES", HANDLERS)
    reply = run_configured(CodeRequest(kind="custom", task_id="t", run_id="r", timeout=60, custom_modules=(HANDLERS,),
                                 config={"handler": f"{HANDLERS}:chatty", "parameters": {"lines": 2}}))
    assert (reply.output, reply.printed) == ("done", "line 0\nline 1\n")


def test_a_failing_python_task_keeps_its_printed_text_and_error_type(task_env):  # noqa: F811
    reply = run_configured(CodeRequest(kind="python", task_id="t", run_id="r", timeout=60,
                                 config={"code": "print('working')\nraise KeyError('missing')"}))
    assert reply.error == {"type": "KeyError", "message": "'missing'"}
    assert reply.printed.startswith("working\n") and "KeyError" in reply.printed  # the traceback, for the author
    reply = run_configured(CodeRequest(kind="python", task_id="t", run_id="r", timeout=60,
                                 config={"code": "import os\nprint('bye', flush=True)\nos._exit(3)"}))
    assert reply.error == {"type": "PythonTaskCrashed", "message": "exit code 3: bye"}


NOT_ROOT_ENGINE = """
import json, os, sys, time
sys.path[:0] = json.loads(sys.argv[1])
from loopline.memory.local_mode import LocalMode
from infra.sandbox.launch import run_code
from infra.sandbox.request import MAX_PRINTED, CodeRequest
from statemachine.compiler import compile_workflow
mode = LocalMode()
plan = compile_workflow(sys.argv[2], "t.yaml")
run_id = mode.engine.start_run(plan, {"engine": os.getpid()})
mode.run_until(lambda: mode.engine.describe_run(run_id)["status"] != "RUNNING", timeout=60)
print(json.dumps(mode.engine.describe_run(run_id)["tasks"]))
"""


@pytest.mark.slow
@as_root
def test_an_engine_that_is_not_root_still_keeps_its_environment_from_task_code(task_env, shared_dir):  # noqa: F811
    from infra.sandbox.identity import TaskIdentity, import_path, task_python

    nobody = pwd.getpwnam("nobody")
    identity = TaskIdentity("nobody", nobody.pw_uid, nobody.pw_gid)
    workflow = yaml.safe_dump({"workflow": {"metadata": {"id": "not_root"}, "tasks": [
        {"id": "py", "type": "python", "config": {"code": PEEK + (
            "result = [os.getuid(), peek(f\"/proc/{inputs['engine']}/environ\"), "
            "peek(f'/proc/{os.getppid()}/environ'), dict(os.environ)]")}},
        {"id": "sh", "type": "shell", "config": {"command": [
            "sh", "-c", 'cat "/proc/$1/environ" /proc/$PPID/environ; env; true', "sh", "${inputs.engine}"]}},
    ]}})
    done = subprocess.run(
        [task_python(identity), "-I", "-c", NOT_ROOT_ENGINE, json.dumps(import_path(identity)), workflow],
        env={"LOOPLINE_CANARY": CANARY, "PATH": "/usr/bin:/bin", "LOOPLINE_FILE_ROOT": str(shared_dir)},
        cwd=shared_dir, user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    tasks = json.loads(done.stdout.splitlines()[-1])
    assert tasks["py"]["status"] == "COMPLETED" and tasks["sh"]["status"] == "COMPLETED", tasks
    uid, engine_environ, parent_environ, environ = tasks["py"]["output"]
    assert uid == nobody.pw_uid  # the engine's own user: no switch is possible
    assert engine_environ.startswith("refused") and CANARY not in parent_environ and CANARY not in json.dumps(environ)
    assert CANARY not in json.dumps(tasks["sh"]["output"])
    assert "Permission denied" in tasks["sh"]["output"]["stderr"]


# ---------------------------------------------------------------- where a shell task starts, who runs it


@as_root
def test_a_working_dir_outside_the_file_root_is_entered_with_the_task_users_own_rights(task_env):  # noqa: F811
    private = Path(tempfile.mkdtemp(prefix="loopline-private-test-"))  # 0700, like /root
    try:
        inner = private / "open"  # 0755 itself, but unreachable for other users through its parent
        inner.mkdir(mode=0o755)
        (inner / "notes.txt").write_text("private notes\n")
        error = failure("shell", {"command": ["cat", "notes.txt"], "working_dir": str(inner)})
        assert error.error_type == "InvalidConfig" and "can enter" in error.message
    finally:
        shutil.rmtree(private)
    error = failure("shell", {"command": ["ls"], "working_dir": "../.."})  # relative: inside the file root only
    assert error.error_type == "FileAccessDenied"


def test_the_default_file_root_is_the_shell_tasks_to_write(task_env, shared_dir, monkeypatch):  # noqa: F811
    monkeypatch.delenv("LOOPLINE_FILE_ROOT")
    monkeypatch.setattr(tempfile, "tempdir", str(shared_dir))  # so the default root is made afresh, here
    result = run_type("shell", {"command": ["sh", "-c", "echo kept > note.txt && pwd -P"]})
    assert result["stdout"] == str(shared_dir / "loopline-files")
    assert (shared_dir / "loopline-files" / "note.txt").read_text() == "kept\n"


@as_root
@pytest.mark.parametrize("setting, message", [("root", "is root"), ("0", "is root"),
                                              ("no-such-user-xyz", "no such user")])
def test_the_task_user_setting_never_means_root_or_nobody_known(task_env, monkeypatch, setting, message):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_TASK_USER", setting)
    error = failure("shell", {"command": ["id", "-u"]})
    assert error.error_type == "ProviderConfigError" and "LOOPLINE_TASK_USER" in error.message and message in \
        error.message


@as_root
def test_an_interpreter_the_task_user_cannot_run_is_a_clear_error(task_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LOOPLINE_TASK_PYTHON", os.path.realpath(sys.executable))  # under /root (0700) here
    if not os.path.realpath(sys.executable).startswith("/root/"):
        pytest.skip("this machine's Python is reachable for every user")
    reply = run_configured(CodeRequest(kind="python", task_id="t", run_id="r", timeout=60, config={"code": "x = 1"}))
    assert reply.error["type"] == "ProviderConfigError" and "LOOPLINE_TASK_PYTHON" in reply.error["message"]


@as_root
def test_a_symlink_planted_as_the_default_file_root_hands_nothing_over(task_env, shared_dir, monkeypatch):  # noqa: F811
    monkeypatch.delenv("LOOPLINE_FILE_ROOT")
    monkeypatch.setattr(tempfile, "tempdir", str(shared_dir))
    target = Path(tempfile.mkdtemp(prefix="loopline-not-yours-", dir="/tmp"))  # root's, like /etc
    try:
        (shared_dir / "loopline-files").symlink_to(target)
        assert run_type("shell", {"command": ["true"]})["exit_code"] == 0
        assert target.stat().st_uid == 0
    finally:
        shutil.rmtree(target)
