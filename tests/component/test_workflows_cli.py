"""`loopline workflows register/list/show/diff/deprecate` (loopline/workflows_cli.py) against the api
handler on local mode's engine: the CLI's HTTP calls answered by the handler, as a `loopline dev` would."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from loopline.cli import main
from tests.component.test_workflow_versions import api, order

ROUTES = (("/workflows/{workflow_id}/versions/{version}/deprecate", 5), ("/workflows/{workflow_id}/diff", 3),
          ("/workflows/{workflow_id}", 2), ("/workflows", 1))


def _through_the_handler(method: str, url: str, body=None, timeout: float = 30):
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    resource = next(r for r, n in ROUTES if len(segments) == n and (n < 3 or r.endswith(segments[-1])))
    return api(method, parts.path, resource, body, dict(parse_qsl(parts.query)) or None)


@pytest.fixture
def cli(local, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("loopline.workflows_cli.api_call", _through_the_handler)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        # The handler's metric lines (EMF) go to this process's stdout: not the CLI's.
        return code, "".join(line for line in out.splitlines(True) if not line.startswith('{"_aws"')), err
    return run


def test_register_show_diff_and_deprecate(cli, tmp_path):
    (tmp_path / "v1.yaml").write_text(order())
    (tmp_path / "v2.yaml").write_text(order("1.1.0", "paid by pay", charge="pay", renamed="charge"))
    (tmp_path / "v1b.yaml").write_text(order(wait="3h"))
    code, out, _ = cli("workflows", "register", "v1.yaml")
    assert code == 0 and json.loads(out)["created"] is True
    code, out, _ = cli("workflows", "register", "v2.yaml")
    assert code == 0 and json.loads(out)["report"]["changes"][1]["kind"] == "task_renamed"
    code, out, err = cli("workflows", "register", "v1b.yaml")
    assert code == 2 and json.loads(out)["differences"] == ["compatible: task 'pause': wait changed (duration)"]
    assert "already registered with other content; register it under a new version (HTTP 409)" in err
    assert "  compatible: task 'pause'" in err
    # Two registered versions: the API's report; a file and a registered version: compared here.
    code, out, _ = cli("workflows", "diff", "order@1.0.0", "order@latest")
    assert code == 0 and out.splitlines() == ["order 1.0.0 -> 1.1.0: 2 changes, 0 breaking",
                                              "  compatible  output 'charged' is computed otherwise",
                                              "  compatible  task 'charge' renamed to 'pay'"]
    code, out, _ = cli("workflows", "diff", "order@1.1.0", "v1b.yaml")
    assert code == 0 and out.splitlines() == ["order 1.1.0 -> 1.0.0: 4 changes, 1 breaking",
                                              "  compatible  output 'charged' is computed otherwise",
                                              "  breaking    task 'pay' removed",
                                              "  compatible  task 'pause': wait changed (duration)",
                                              "  compatible  task 'charge' added"]
    code, out, _ = cli("workflows", "deprecate", "order@1.1.0", "--reason", "wrong")
    assert code == 0 and json.loads(out)["deprecation"] == "wrong"
    code, out, _ = cli("workflows", "show", "order")
    assert code == 0 and json.loads(out)["version"] == "1.0.0"
    code, out, _ = cli("workflows", "list")
    assert [w["deprecated"] for w in json.loads(out)["workflows"]] == [False, True]


@pytest.mark.parametrize("argv, message", [
    (("workflows", "diff", "order@1.0.0"), "workflows diff needs two workflows"),
    (("workflows", "diff", "missing.yaml", "order@1.0.0"), "missing.yaml: no such file, and not a workflow"),
    (("workflows", "diff", "order@9.0.0", "order@1.0.0"), "no workflow 'order@9.0.0' (HTTP 404)"),
    (("workflows", "diff", "order@9.0.0", "other@1.0.0"), "order@9.0.0: no workflow 'order@9.0.0' (HTTP 404)"),
    (("workflows", "deprecate", "order"), "workflows deprecate needs ID@VERSION"),
    (("workflows", "deprecate", "order@latest"), "workflows deprecate needs ID@VERSION"),
    (("workflows", "deprecate", "order@2.0.0"), "no workflow 'order@2.0.0' (HTTP 404)"),
    (("workflows", "show"), "workflows show needs a workflow"),
])
def test_bad_input_exits_2_with_one_line(cli, tmp_path, argv, message):
    (tmp_path / "v1.yaml").write_text(order())
    assert cli("workflows", "register", "v1.yaml")[0] == 0
    code, _, err = cli(*argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_file_that_does_not_compile_is_reported_at_its_line(cli, tmp_path):
    (tmp_path / "bad.yaml").write_text(order("1.1.0", charge="pay", renamed="check"))
    (tmp_path / "v1.yaml").write_text(order())
    code, out, err = cli("workflows", "diff", "v1.yaml", "bad.yaml")
    assert code == 2 and "bad.yaml:11:" in err and "renamed from 'check', which this version still has" in err


def test_diff_json_is_one_line_on_stdout(tmp_path):
    """--json: the report alone on stdout (the CLI keeps stdout for it), as another process reads it."""
    import subprocess
    import sys

    (tmp_path / "v1.yaml").write_text(order())
    (tmp_path / "v2.yaml").write_text(order("2.0.0", wait="2h").replace('mappings: {charged: "${tasks.charge.output}"}',
                                                                       "mappings: {}"))
    done = subprocess.run([sys.executable, "-m", "loopline.cli", "workflows", "diff", "v1.yaml", "v2.yaml", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    report = json.loads(line)
    assert (report["from"], report["to"], report["breaking"]) == ("1.0.0", "2.0.0", True)
    assert [(c["kind"], c["impact"]) for c in report["changes"]] == [("output_removed", "breaking"),
                                                                     ("wait_changed", "compatible")]
