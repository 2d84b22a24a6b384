"""A task reading a variable another task exports waits for it (statemachine/data_deps.py)."""

from __future__ import annotations

import textwrap

from statemachine.compiler import compile_workflow
from statemachine.data_deps import code_reads
from tests.unit.test_engine_semantics import drive, start


def deps(text: str) -> dict[str, tuple[str, ...]]:
    plan = compile_workflow(textwrap.dedent(text), "w.yaml")
    return {n: node.deps for n, node in plan.nodes.items()}


def test_code_reads_names_used_and_not_bound_and_explicit_variables():
    code = textwrap.dedent("""
        import json
        def check(r):
            return r.get('ok')
        results = [check(r) for r in records]
        total = len(results) + variables['offset'] + variables.get('bias', 0)
        seen.append(total)
    """)
    assert code_reads(code) == {"records", "len", "variables", "offset", "bias", "seen"}
    assert code_reads("def broken(:") == set()


def test_a_reader_waits_for_the_exporter_in_expressions_and_code():
    found = deps("""
        workflow:
          metadata: {id: d}
          tasks:
            - id: check
              type: python
              config: {code: "result = len(records)"}
            - id: show
              type: python
              config: {code: "result = 1"}
              outputs: [{name: label, value: "${variables.records.length} records"}]
            - id: bare
              type: python
              when: "${records.length > 0}"
              config: {code: "result = 1"}
            - id: load
              type: python
              config: {code: "result = [1, 2]"}
              outputs: [{name: records, value: "${response}", export: true}]
    """)
    assert found["check"] == ("load",) and found["show"] == ("load",) and found["bare"] == ("load",)
    assert found["load"] == ()


def test_no_wait_on_itself_a_cycle_a_skippable_exporter_or_an_own_result_name():
    found = deps("""
        workflow:
          metadata: {id: d}
          tasks:
            - id: first
              type: python
              config: {code: "result = count"}
              outputs: [{name: count, value: "${response}", export: true}]
            - id: later
              type: python
              depends_on: [first]
              config: {code: "result = 1"}
              outputs: [{name: count, value: "${count}", export: true}]
            - id: maybe
              type: python
              when: "${inputs.go}"
              config: {code: "result = 5"}
              outputs: [{name: flag, value: "${response}", export: true}]
            - id: reads_flag
              type: python
              config: {code: "result = flag"}
    """)
    assert found["first"] == ()  # `later` exports count too, but waits for first: no cycle
    assert found["later"] == ("first",)  # `${count}` in its own outputs is its result's name
    assert found["reads_flag"] == ()  # maybe may be skipped: a wait would skip the reader too


def test_an_exporter_inside_a_loop_is_waited_for_as_the_loop():
    found = deps("""
        workflow:
          metadata: {id: d}
          tasks:
            - id: init
              type: python
              config: {code: "seen = []"}
              outputs: [{name: seen, value: "${seen}", export: true}]
            - id: report
              type: python
              config: {code: "result = len(variables['seen'])"}
          control_flow:
            loops:
              - id: each
                type: for_each
                items: [1, 2]
                tasks:
                  - id: note
                    type: python
                    config: {code: "seen.append(item)"}
                    outputs: [{name: seen, value: "${variables.seen}", export: true}]
    """)
    assert found["report"] == ("each", "init")
    assert found["each"] == ("init",)


def test_the_seed_pipeline_orders_without_a_written_dependency(local, clock):
    """load takes 5 s: without the waits, validate and the branches would read no variable and fail."""
    view = drive(local, start(local, """
        workflow:
          metadata: {id: pipeline}
          tasks:
            - id: load
              type: wait
              config: {duration: 5s}
              outputs: [{name: records, value: "${inputs.rows}", export: true}]
            - id: validate
              type: python
              config:
                code: |
                  valid = [r for r in records if r > 1]
              outputs: [{name: valid, value: "${valid}", export: true}]
          control_flow:
            parallel:
              - id: process
                branches:
                  - name: double
                    tasks: [{id: double, type: python, config: {code: "result = [v * 2 for v in valid]"}}]
                  - name: count
                    tasks: [{id: count, type: python, config: {code: "result = len(valid)"}}]
    """, {"rows": [1, 2, 3]}), clock)
    assert view["status"] == "COMPLETED", view
    assert view["tasks"]["process"]["output"] == {"double": {"status": "COMPLETED", "data": [4, 6]},
                                                  "count": {"status": "COMPLETED", "data": 2}}
