"""The sandbox's settings are handed to it: read once where a process is wired (the task runner's
handler, local mode, the task types' settings) and passed down, so what task code runs as and with
depends only on what its caller was given, never on the environment at the moment it runs."""

from __future__ import annotations

from infra.dispatch import runner
from infra.dispatch.jobs import AttemptRef, CodeJob, new_token
from infra.sandbox.launch import run_code
from infra.sandbox.request import CodeRequest
from infra.sandbox.settings import SandboxSettings
from infra.tasks.settings import TaskSettings

MISSING = "/nonexistent/python3"


def test_the_sandbox_settings_are_read_from_an_environment_given_to_them():
    env = {"LOOPLINE_FILE_ROOT": "/srv/files", "LOOPLINE_TASK_USER": " tasks ", "LOOPLINE_TASK_PYTHON": MISSING}
    assert SandboxSettings.from_env(env) == SandboxSettings("/srv/files", "tasks", MISSING)
    assert SandboxSettings.from_env({}) == SandboxSettings(None, "nobody", "")
    assert TaskSettings.from_env(env).sandbox == SandboxSettings("/srv/files", "tasks", MISSING)


def python_request() -> CodeRequest:
    return CodeRequest(kind="python", task_id="t", run_id="r", timeout=60, config={"code": "x = 1"})


def test_the_sandbox_runs_with_the_settings_it_is_given_whatever_the_environment_says(monkeypatch):
    monkeypatch.setenv("LOOPLINE_TASK_PYTHON", MISSING)  # ignored: the caller's settings decide
    assert run_code(python_request(), SandboxSettings()).output == {"x": 1}
    monkeypatch.delenv("LOOPLINE_TASK_PYTHON")
    reply = run_code(python_request(), SandboxSettings(task_python=MISSING))
    assert reply.error is not None and reply.error["type"] == "ProviderConfigError" and MISSING in \
        reply.error["message"]


def test_the_task_runner_and_the_code_provider_pass_their_settings_to_the_sandbox():
    job = CodeJob(AttemptRef("r", "plan", "t", "key", 1), new_token(), python_request())
    answer = runner.run_job(job.to_payload(), SandboxSettings(task_python=MISSING))
    assert MISSING in answer["reply"]["error"]["message"]
    from infra.tasks.types.code import RUNTIME

    provider = next(p for p in RUNTIME.providers if p.name == "subprocess")
    code = provider.build(TaskSettings(task_python=MISSING))
    assert MISSING in (code(python_request()).error or {})["message"]
