"""`loopline run` of python tasks whose code is a file next to the workflow and whose requirements the
deployment's package directory (LOOPLINE_PYTHON_PACKAGES) provides; a task without requirements does not
see that directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

LOOPLINE = str(Path(sys.executable).with_name("loopline"))

FLOW = """workflow:
  metadata: {id: packaged}
  tasks:
    - id: calc
      type: python
      config: {code: steps/calc.py, requirements: ["tinycalc>=1,<2"]}
    - id: plain
      type: python
      depends_on: [calc]
      config:
        code: |
          try:
              import tinycalc
              result = "imported"
          except ImportError:
              result = "not visible"
  outputs:
    mappings: {doubled: "${tasks.calc.output}", plain: "${tasks.plain.output}"}
"""


@pytest.fixture
def project(tmp_path):
    # Not under tmp_path (0700, root's when the tests run as root): the task user must read the packages.
    shared = Path(tempfile.mkdtemp(prefix="loopline-packages-"))
    shared.chmod(0o755)
    yield _project(tmp_path, shared / "packages")
    shutil.rmtree(shared, ignore_errors=True)


def _project(tmp_path, packages):  # as `pip install --target` leaves it
    (packages / "tinycalc").mkdir(parents=True)
    (packages / "tinycalc" / "__init__.py").write_text("def double(x):\n    return 2 * x\n")
    (packages / "tinycalc-1.2.0.dist-info").mkdir()
    (packages / "tinycalc-1.2.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinycalc\nVersion: 1.2.0\n")
    for path in (packages, packages / "tinycalc", packages / "tinycalc-1.2.0.dist-info"):
        path.chmod(0o755)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "calc.py").write_text("import tinycalc\nresult = tinycalc.double(inputs['n'])\n")
    (tmp_path / "flow.yaml").write_text(FLOW)
    (tmp_path / "packages").symlink_to(packages)
    return tmp_path


def loopline(*args, env=None):
    return subprocess.run([LOOPLINE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_code_file_runs_with_the_deployments_packages(project):
    env = {"LOOPLINE_PYTHON_PACKAGES": str(project / "packages")}
    done = loopline("run", str(project / "flow.yaml"), "--local", "--state", str(project / "state"), "--json",
                    "--input", '{"n": 21}', env=env)
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["status"] == "COMPLETED" and view["outputs"] == {"doubled": 42, "plain": "not visible"}


def test_requirements_the_deployment_cannot_meet_are_refused_before_running(project):
    done = loopline("validate", str(project / "flow.yaml"))
    assert done.returncode == 2
    assert "flow.yaml:6:52: task 'calc': requirement 'tinycalc>=1,<2': this deployment gives python tasks no " \
           "packages" in done.stdout
    (project / "steps" / "calc.py").unlink()
    done = loopline("validate", str(project / "flow.yaml"), env={"LOOPLINE_PYTHON_PACKAGES": str(project)})
    assert done.returncode == 2 and "flow.yaml:6:22: code 'steps/calc.py': no such file" in done.stderr
