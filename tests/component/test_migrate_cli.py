"""`loopline migrate` (loopline/migrate_cli.py) against the api handler on local mode's engine: the CLI's HTTP
calls answered by the handler, as a `loopline dev` would."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from loopline.cli import main
from tests.component.test_migration_api import BULK, RUN, waiting
from tests.component.test_workflow_versions import api, register
from tests.unit.test_engine_migration import V1, V2
from tests.unit.test_engine_semantics import drive, settle


def _through_the_handler(method: str, url: str, body=None, timeout: float = 30):
    path = urlsplit(url).path
    return api(method, path, BULK if path.startswith("/workflows/") else RUN, body)


@pytest.fixture
def cli(local, monkeypatch, capsys):
    monkeypatch.setattr("loopline.migrate_cli.api_call", _through_the_handler)
    assert register(V1)[0] == 201 and register(V2)[0] == 201

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        # The handler's metric lines (EMF) go to this process's stdout: not the CLI's.
        return code, "".join(line for line in out.splitlines(True) if not line.startswith('{"_aws"')), err
    return run


def test_a_dry_run_prints_the_report_then_the_run_is_migrated(cli, local, clock):
    run_id, token = waiting(local)
    code, out, _ = cli("migrate", run_id, "--to", "order@2.0.0", "--dry-run")
    assert code == 0 and out.splitlines() == [
        f"run {run_id}: migrate order 1.0.0 -> 2.0.0",
        "  keep: 'draft' (was 'prepare'), completed",
        "  keep waiting: 'review', waiting",
        "  add: 'notify', pending",
        "  re evaluate: 'ship', pending",
        "  dry run: nothing changed"]
    code, out, _ = cli("migrate", run_id, "--to", "order@2.0.0", "--reason", "notify first")
    assert code == 0 and out.splitlines()[-1] == "  queued: the worker moves the run (epoch 1)"
    settle(local, run_id)
    local.engine.decide(token, "APPROVED")
    assert drive(local, run_id, clock)["outputs"]["told"] == "told draft 1"


def test_a_refusal_prints_each_blocking_task_and_exits_2(cli, local):
    run_id, _ = waiting(local)
    assert register(V2.replace("    - id: review\n", "    - id: check\n      renamed_from: review\n").replace(
        "depends_on: [review]", "depends_on: [check]").replace('"2.0.0"', '"3.0.0"'))[0] == 201
    code, out, _ = cli("migrate", run_id, "--to", "order@3.0.0")
    assert code == 2 and out.splitlines() == [
        f"run {run_id}: cannot migrate order 1.0.0 -> 3.0.0:",
        "  'review' (waiting): it is waiting, and version 3.0.0 renames it to 'check': its links and timers name it"]
    code, out, _ = cli("migrate", run_id, "--to", "order@3.0.0", "--json")
    assert code == 2 and json.loads(out)["report"]["allowed"] is False


def test_every_run_of_a_version(cli, local):
    first, second = waiting(local)[0], waiting(local)[0]
    code, out, _ = cli("migrate", "--all-of", "order@1.0.0", "--to", "order@2.0.0")
    assert code == 0 and sorted(line for line in out.splitlines() if line.startswith("run ")) == sorted(
        f"run {r}: migrate order 1.0.0 -> 2.0.0" for r in (first, second))
    settle(local, first)
    code, out, _ = cli("migrate", "--all-of", "order@1.0.0", "--to", "order@2.0.0")
    assert code == 0 and out == "no run of order@1.0.0 to migrate\n"


@pytest.mark.parametrize("argv, message", [
    (("migrate", "--to", "order@2.0.0"), "name one run"),
    (("migrate", "r1", "--all-of", "order@1.0.0", "--to", "order@2.0.0"), "name one run"),
    (("migrate", "nope", "--to", "order@2.0.0"), "no run with id 'nope' (HTTP 404)"),
    (("migrate", "nope", "--to", "order"), "'to' must name the version to move to: ID@VERSION (HTTP 400)"),
])
def test_usage_errors_exit_2(cli, argv, message):
    code, _, err = cli(*argv)
    assert code == 2 and message in err, err
