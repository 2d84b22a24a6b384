"""Parallel blocks (dsl.md "Loops, parallel branches, sub-workflows"): merge, all, first, custom, sum, count, min,
max, max_concurrent."""

from __future__ import annotations

from tests.unit.test_engine_semantics import drive, start, statuses

BLOCK = """
workflow:
  metadata: {id: par}
  config: {parallelism: {max_concurrent: %(limit)s}}
  tasks:
    - {id: load, type: python, config: {code: "result = [1, 2, 3]"}}
    - {id: report, type: python, depends_on: [fan], config: {code: "result = tasks['fan']['output']"}}
  control_flow:
    parallel:
      - id: fan
        depends_on: [load]
        branches:
          - name: double
            tasks:
              - {id: d1, type: python, config: {code: "result = [x * 2 for x in tasks['load']['output']]"}}
          - name: total
            tasks:
              - {id: t1, type: python, config: {code: "result = sum(tasks['load']['output'])"}}
              - {id: t2, type: python, depends_on: [t1], config: {code: "result = tasks['t1']['output'] + 100"}}
          - name: broken
            tasks:
              - {id: b1, type: python, config: {code: "%(broken)s"}}
        aggregation: %(aggregation)s
"""


def block(strategy="merge", broken="raise ValueError('bad branch')", limit=10, mapping=None):
    aggregation = {"strategy": strategy}
    if mapping:
        aggregation["output_mapping"] = mapping
    import json

    return BLOCK % {"limit": limit, "broken": broken, "aggregation": json.dumps(aggregation)}


def test_merge_reports_every_branch_and_never_fails(local, clock):
    view = drive(local, start(local, block("merge")), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["fan"]["output"] == {
        "double": {"status": "COMPLETED", "data": [2, 4, 6]},
        "total": {"status": "COMPLETED", "data": 106},
        "broken": {"status": "FAILED", "error": {"type": "ValueError", "message": "bad branch", "task_id": "b1"}},
    }
    assert view["tasks"]["report"]["status"] == "COMPLETED"


def test_all_fails_when_a_branch_fails_and_lists_results_otherwise(local, clock):
    failed = drive(local, start(local, block("all")), clock)
    assert failed["status"] == "FAILED"
    assert failed["tasks"]["fan"]["error"]["type"] == "ValueError"
    assert "branch 'broken' failed" in failed["tasks"]["fan"]["error"]["message"]
    assert failed["tasks"]["report"]["status"] == "CANCELLED"
    ok = drive(local, start(local, block("all", broken="result = 'fine'")), clock)
    assert ok["tasks"]["fan"]["output"] == [[2, 4, 6], 106, "fine"]


def _numbers(strategy, broken):
    """double's data is a list: the numeric strategies read only total and broken."""
    return block(strategy, broken=broken).replace(
        'result = [x * 2 for x in tasks[\'load\'][\'output\']]', "result = -1")


def test_sum_min_max_over_numbers_and_count_of_completed_branches(local, clock):
    for strategy, expected in (("sum", -1 + 106 + 0.5), ("min", -1), ("max", 106)):
        view = drive(local, start(local, _numbers(strategy, "result = 0.5")), clock)
        assert view["status"] == "COMPLETED", strategy
        assert view["tasks"]["fan"]["output"] == expected, strategy
    counted = drive(local, start(local, block("count")), clock)  # broken fails: two of three completed
    assert counted["status"] == "COMPLETED"
    assert counted["tasks"]["fan"]["output"] == 2


def test_sum_fails_on_a_failed_branch_and_names_a_branch_that_is_not_a_number(local, clock):
    failed = drive(local, start(local, _numbers("sum", "raise ValueError('bad branch')")), clock)
    assert failed["status"] == "FAILED"
    assert failed["tasks"]["fan"]["error"]["type"] == "ValueError"
    for data in ("'7'", "True", "None", "[1]"):
        wrong = drive(local, start(local, _numbers("max", f"result = {data}")), clock)
        assert wrong["status"] == "FAILED", data
        assert wrong["tasks"]["fan"]["error"]["type"] == "TypeError", data
        assert "branch 'broken'" in wrong["tasks"]["fan"]["error"]["message"], data


def test_first_takes_the_first_success_and_cancels_the_others(local, clock):
    text = block("first").replace('raise ValueError(\'bad branch\')', "result = 1").replace(
        "- {id: b1, type: python, config: {code: \"result = 1\"}}",
        "- {id: b1, type: wait, config: {duration: 1d}}")
    view = drive(local, start(local, text), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["fan"]["output"] in ([2, 4, 6], 106)
    assert view["tasks"]["b1"]["status"] == "CANCELLED"  # the day-long wait lost the race
    assert view["tasks"]["report"]["status"] == "COMPLETED"


def test_first_with_no_success_fails(local, clock):
    text = """
    workflow:
      metadata: {id: nofirst}
      control_flow:
        parallel:
          - id: race
            branches:
              - name: a
                tasks: [{id: a1, type: python, config: {code: "raise KeyError('a')"}}]
              - name: b
                tasks: [{id: b1, type: python, config: {code: "raise KeyError('b')"}}]
            aggregation: {strategy: first}
    """
    view = drive(local, start(local, text), clock)
    assert view["status"] == "FAILED" and view["tasks"]["race"]["error"]["type"] == "NoBranchSucceeded"


def test_custom_output_mapping_over_branches(local, clock):
    mapping = {"doubled": "${branches.double.output}", "sum": "${branches.total.output - 100}",
               "broken": "${branches.broken.status}"}
    view = drive(local, start(local, block("custom", mapping=mapping)), clock)
    assert view["tasks"]["fan"]["output"] == {"doubled": [2, 4, 6], "sum": 6, "broken": "FAILED"}


def test_max_concurrent_orders_branches(local, clock, actions):
    view = drive(local, start(local, block("merge", broken="result = 'late'", limit=1)), clock)
    assert view["status"] == "COMPLETED"
    # one branch at a time: a branch starts only after the one before it finished
    assert actions.index("b1") > actions.index("t2") > actions.index("d1")
    assert statuses(view)["b1"] == "COMPLETED"


def test_a_member_failure_is_caught_inside_the_block(local, clock):
    """catch is by error type for the whole workflow: the member's own failure is caught first,
    and its branch carries the handler's output."""
    text = block("all") + """
  error_handling:
    catch: [{error_types: [ValueError], handler: recover}]
"""
    recover = "    - {id: recover, type: python, config: {code: \"result = 'recovered'\"}}\n"
    text = text.replace("    - {id: report,", recover + "    - {id: report,")
    view = drive(local, start(local, text), clock)
    assert view["status"] == "COMPLETED"
    assert view["tasks"]["b1"]["status"] == "FAILED"
    assert view["tasks"]["report"]["output"] == [[2, 4, 6], 106, "recovered"]


def test_seed_style_merge_with_output_mapping(local, clock):
    mapping = {"enriched": "${branches.double.output}", "analysis": "${branches.total.output}"}
    view = drive(local, start(local, block("merge", broken="result = 0", mapping=mapping)), clock)
    assert view["tasks"]["fan"]["output"] == {"enriched": [2, 4, 6], "analysis": 106}


TIMED = """
workflow:
  metadata: {id: timed}
  config: {parallelism: {branch_timeout: 10m, max_concurrent: %(limit)s}}
  tasks:
    - {id: after, type: python, depends_on: [fan], config: {code: "result = 'after'"}}
  control_flow:
    parallel:
      - id: fan
        branches:
          - name: quick
            tasks: [{id: q1, type: wait, config: {duration: 5m}}]
          - name: slow
            tasks:
              - {id: s1, type: wait, config: {duration: 8m}}
              - {id: s2, type: approval, depends_on: [s1], config: {approvers: [a@example.com], timeout: 1d}}
              - {id: s3, type: python, depends_on: [s2], config: {code: "result = 3"}}
        aggregation: {strategy: %(strategy)s}
"""


def test_a_branch_over_its_timeout_is_ended_and_the_strategy_decides(local, clock):
    failed = drive(local, start(local, TIMED % {"strategy": "all", "limit": 10}), clock)
    assert failed["status"] == "FAILED"
    assert failed["tasks"]["fan"]["error"]["type"] == "BranchTimeout"
    tasks = failed["tasks"]
    assert tasks["q1"]["status"] == "COMPLETED" and tasks["s1"]["status"] == "COMPLETED"
    assert tasks["s2"]["status"] == "FAILED" and tasks["s2"]["error"] == {
        "type": "BranchTimeout", "message": "branch 'slow' of parallel block 'fan' ran longer than 600s"}
    assert tasks["s3"]["status"] in ("FAILED", "CANCELLED")
    merged = drive(local, start(local, TIMED % {"strategy": "merge", "limit": 10}), clock)
    assert merged["status"] == "COMPLETED"
    assert merged["tasks"]["fan"]["output"]["slow"]["status"] == "FAILED"
    assert merged["tasks"]["fan"]["output"]["quick"] == {"status": "COMPLETED", "data": merged["tasks"]["q1"]["output"]}


def test_a_branch_deadline_counts_from_when_the_branch_starts(local, clock):
    """max_concurrent 1: slow starts when quick has ended (5 min in); its 8 min wait fits its own 10 min."""
    text = (TIMED % {"strategy": "all", "limit": 1}).replace(
        "- {id: s2, type: approval, depends_on: [s1], config: {approvers: [a@example.com], timeout: 1d}}",
        "- {id: s2, type: python, depends_on: [s1], config: {code: \"result = 2\"}}")
    view = drive(local, start(local, text), clock)
    assert view["status"] == "COMPLETED", view["tasks"]


def test_a_hundred_branches_run_at_once(local, clock):
    """Seed 003 promises up to 100 concurrent branches: no cap stands below that, and all start together."""
    waits = "\n".join(f"    - {{id: w{i}, type: wait, config: {{duration: 1s}}}}" for i in range(100))
    branches = ", ".join(f"{{name: b{i}, tasks: [w{i}]}}" for i in range(100))
    block = f"{{id: fan, branches: [{branches}], aggregation: {{strategy: count}}}}"
    run_id = start(local, f"workflow:\n  metadata: {{id: hundred}}\n  tasks:\n{waits}\n"
                          f"  control_flow:\n    parallel:\n      - {block}\n")
    while local.pump_once():
        pass  # nothing moves the clock: every branch's wait has started before any ends
    waiting = local.engine.describe_run(run_id)["tasks"]
    assert sum(1 for i in range(100) if waiting[f"w{i}"]["status"] == "WAITING") == 100
    view = drive(local, run_id, clock)
    assert view["status"] == "COMPLETED" and view["tasks"]["fan"]["output"] == 100
