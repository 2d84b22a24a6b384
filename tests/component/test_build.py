"""What `sam build` ships (issue #10 item 5): a real build, as `sam build && sam deploy` makes it
(samconfig.toml's build settings; the Makefile's build-* targets copy statemachine, infra and
functions and install requirements.txt). Each built function imports its handler from its own
directory alone and carries nothing of what runs on one machine: the loopline package (the CLI,
the embedded emulation, local mode's adapters) and the `local` extra's moto and SAM translator.

One build serves the module (about 75 s on 2 cores: four pip installs of the requirements; SAM's
`--cached` does not help, it reruns a makefile build whenever any file under CodeUri "." changes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {"statemachine", "infra", "functions"}
ONE_MACHINE = ("loopline", "moto", "samtranslator", "localstack_client")
FUNCTIONS = {"ApiFunction", "ConsoleFunction", "WorkerFunction", "DeadLetterFunction", "TaskRunnerFunction",
             "HistoryFunction", "GaugesFunction", "ConsoleAuthorizerFunction", "ConsoleSignInFunction"}
BUILD_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "SAM_CLI_TELEMETRY": "0"}

# Run as `python -I -S` (isolated, no site: the venv's editable install would map infra/ back to the
# repository): the function's directory and the standard library are all it can import, as on Lambda.
PROBE = """
import importlib, importlib.util, json, sys
directory, handler = sys.argv[1:]
sys.path.insert(0, directory)
module, function = handler.rsplit(".", 1)
assert callable(getattr(importlib.import_module(module), function)), handler
names = %r
print(json.dumps({
    "importable": sorted(n for n in names if importlib.util.find_spec(n) is not None),
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in names),
    "from_the_venv": sorted(m.__name__ for m in list(sys.modules.values())
                      if (getattr(m, "__file__", None) or "").startswith(sys.prefix)
                      and "site-packages" in m.__file__),
}))
""" % (ONE_MACHINE,)


def _sam() -> Path:
    found = ROOT / ".venv-sam/bin/sam"
    if found.exists():
        return found
    on_path = shutil.which("sam")
    if on_path is None:
        pytest.fail("the SAM CLI is missing: `make sam-setup` installs it into .venv-sam (`make test` does)",
                    pytrace=False)
    return Path(on_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Path]:
    build_dir = tmp_path_factory.mktemp("sam-build")
    started = time.monotonic()
    done = subprocess.run([str(_sam()), "build", "--build-dir", str(build_dir)], cwd=ROOT,
                          env={**os.environ, **BUILD_ENV}, capture_output=True, text=True, timeout=1200)
    took = time.monotonic() - started
    assert done.returncode == 0, f"sam build failed after {took:.0f} s:\n{(done.stdout + done.stderr)[-4000:]}"
    yield build_dir
    shutil.rmtree(build_dir, ignore_errors=True)  # about 300 MB: not kept for pytest's last three runs


def _functions(build_dir: Path) -> dict[str, tuple[Path, str]]:
    """Logical id -> (its built directory, its handler) from the template `sam build` wrote."""
    template = yaml_parse((build_dir / "template.yaml").read_text())
    return {lid: (build_dir / r["Properties"]["CodeUri"], r["Properties"]["Handler"])
            for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sam_build_builds_every_function_with_only_the_shipped_packages(built):
    functions = _functions(built)
    assert set(functions) == FUNCTIONS
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for lid, (directory, _) in functions.items():
        entries = {p.name for p in directory.iterdir()}
        assert entries & ours == SHIPPED, (lid, sorted(entries & ours))
        assert not entries & set(ONE_MACHINE), (lid, sorted(entries & set(ONE_MACHINE)))
        assert not [p for name in SHIPPED for p in (directory / name).rglob("__pycache__")], lid


def test_no_built_function_carries_a_file_of_the_loopline_package(built):
    # By content, wherever it would sit: a file of loopline/ copied into a shipped package counts too.
    ours = {_digest(p): p.relative_to(ROOT).as_posix() for p in (ROOT / "loopline").rglob("*.py")
            if p.stat().st_size > 0 and "__pycache__" not in p.parts}
    assert {"loopline/cli.py", "loopline/embedded/provision.py", "loopline/memory/store.py"} <= set(ours.values())
    for lid, (directory, _) in _functions(built).items():
        carried = sorted(f"{p.relative_to(directory)} = {ours[d]}" for p in directory.rglob("*.py")
                         if (d := _digest(p)) in ours)
        assert carried == [], (lid, carried)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_built_function_imports_its_handler_from_its_own_directory_alone(built, function):
    directory, handler = _functions(built)[function]
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, str(directory), handler],
                          cwd=built, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"importable": [], "loaded": [], "from_the_venv": []}, report
