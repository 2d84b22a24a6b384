"""What `sam build` ships (the Makefile's build targets): the engine's code without what runs on one
machine only (issue #10 item 5). Built with the copy step alone (`make package-code`); the
requirements come from this venv instead of a pip install into the artifact."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("functions.api.app", "functions.worker.app", "functions.dead_letter.app", "functions.task_runner.app")
PROBE = """
import importlib, json, sys
package, libraries, *handlers = sys.argv[1:]
sys.path[:0] = [package, *libraries.split(":")]
for name in handlers:
    importlib.import_module(name)
try:
    import infra.local
    local = True
except ImportError:
    local = False
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("moto", "samtranslator", "loopline")
               or m.startswith(("infra.local", "infra.memory")))
print(json.dumps({"infra_local_importable": local, "loaded": heavy}))
"""


def test_the_package_imports_every_handler_and_holds_no_emulator_code(tmp_path):
    env = {"PATH": os.environ["PATH"], "ARTIFACTS_DIR": str(tmp_path)}
    subprocess.run(["make", "-s", "package-code", f"ARTIFACTS_DIR={tmp_path}"], cwd=ROOT, env=env, check=True)
    shipped = {p.relative_to(tmp_path).parts[0] for p in tmp_path.iterdir()}
    assert shipped == {"statemachine", "infra", "functions"}
    assert not (tmp_path / "infra" / "local").exists() and not (tmp_path / "infra" / "memory").exists()
    assert not list(tmp_path.rglob("__pycache__"))
    # Isolated (-I) and without site (-S: the venv's editable install would map infra/ back to the
    # repository): only the package and the venv's libraries are on the path, as in a Lambda function.
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"}
    libraries = ":".join(site.getsitepackages())
    done = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, str(tmp_path), libraries, *HANDLERS],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"infra_local_importable": False, "loaded": []}, report
