"""Pathological input: how long and how much memory each takes to be refused (or handled).

    .venv/bin/python bench/hostile_input.py

Expressions (deep nesting, huge numbers, long strings, growing results, deep data)
and workflow documents (alias bombs, deep nesting, 2,000 chained tasks, a
megabyte of source). Each case runs twice in this process: once timed, once
under tracemalloc (which slows recursion-heavy code tenfold) for the peak of
new allocations. The tests check the
outcome (tests/unit/test_expressions.py, tests/unit/test_fuzz_loader.py); this
prints the cost, which no unit test times.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from statemachine.compiler import validate_workflow  # noqa: E402
from statemachine.expressions import EvalContext, ExpressionError, Scope, evaluate  # noqa: E402


def _deep(depth: int) -> Any:
    value: Any = "end"
    for _ in range(depth):
        value = {"a": value}
    return value


def expression(text: str, **roots: Any) -> Callable[[], str]:
    def run() -> str:
        scope = Scope(roots={"inputs": {}, "tasks": {}, "variables": {}, **roots}, bare=[])
        try:
            value = evaluate(text, scope, EvalContext(now=datetime(2030, 1, 1, tzinfo=timezone.utc), seed=1))
        except ExpressionError as exc:
            return f"ExpressionError: {exc.message}"
        return f"ok ({type(value).__name__}, {len(str(value))} chars)"
    return run


def document(text: str) -> Callable[[], str]:
    def run() -> str:
        found = validate_workflow(text, "hostile.yaml")
        if not found:
            return "valid"
        first = found[0]
        return f"{len(found)} diagnostic(s), first {first.line}:{first.col} {first.message[:60]}"
    return run


CHAIN = "workflow:\n  metadata: {id: x}\n  tasks:\n" + "".join(
    f"    - {{id: t{i}, type: wait, config: {{duration: 1s}}, depends_on: [t{i - 1}]}}\n" if i else
    "    - {id: t0, type: wait, config: {duration: 1s}}\n" for i in range(2000))
BIG_STRING = "x" * 600_000

CASES: list[tuple[str, Callable[[], str]]] = [
    ("expr: 5,000 nested parentheses", expression("${" + "(" * 5000 + "1" + ")" * 5000 + "}")),
    ("expr: 3,000 nested parentheses", expression("${" + "(" * 3000 + "1" + ")" * 3000 + "}")),
    ("expr: 3,000 nested lists", expression("${" + "[" * 3000 + "]" * 3000 + "}")),
    ("expr: 3,000 unary minus", expression("${" + "-" * 3000 + "1}")),
    ("expr: 1,000 nested ternaries", expression("${" + "1 ? " * 1000 + "1" + " : 1" * 1000 + "}")),
    ("expr: 101-digit number", expression("${" + "1" * 101 + "}")),
    ("expr: 1e999", expression("${1e999}")),
    ("expr: 10^100 * 10^100 (big ints)", expression("${" + "9" * 100 + " * " + "9" * 100 + "}")),
    ("expr: 2,000 additions (flat)", expression("${" + " + ".join(["1"] * 2000) + "}")),
    ("expr: s + s, s of 600 KB", expression("${inputs.s + inputs.s}", inputs={"s": BIG_STRING})),
    ("expr: base64 of 800 KB", expression("${base64_encode(inputs.s)}", inputs={"s": "x" * 800_000})),
    ("expr: json_parse of 100,000 nested lists",
     expression("${json_parse(inputs.s)}", inputs={"s": "[" * 100_000 + "]" * 100_000})),
    ("expr: x == x, 5,000-deep data", expression("${inputs.x == inputs.x}", inputs={"x": _deep(5000)})),
    ("expr: render 5,000-deep data", expression("v=${inputs.x}", inputs={"x": _deep(5000)})),
    ("yaml: alias bomb", document("a: &a [" + "*a, " * 50 + "]\n")),
    ("yaml: 5,000 nested flow lists", document("workflow:\n  " + "[" * 5000 + "]" * 5000 + "\n")),
    ("yaml: 500,000 nested flow lists (1 MB)", document("workflow:\n  " + "[" * 500_000 + "]" * 500_000 + "\n")),
    ("yaml: 2,000 chained tasks", document(CHAIN)),
    ("yaml: 1 MB of one scalar", document("workflow:\n  metadata: {id: '" + "x" * 1_000_000 + "'}\n")),
]


def main() -> None:
    print("$ .venv/bin/python bench/hostile_input.py")
    print(f"{'case':<44} {'ms':>8} {'peak KB':>9}  outcome")
    worst_ms = worst_kb = 0.0
    for name, case in CASES:
        start = time.perf_counter()
        outcome = case()
        elapsed = (time.perf_counter() - start) * 1000
        tracemalloc.start()
        case()
        peak = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
        worst_ms, worst_kb = max(worst_ms, elapsed), max(worst_kb, peak)
        print(f"{name:<44} {elapsed:8.1f} {peak:9.0f}  {outcome[:90]}")
    print(f"\nworst case: {worst_ms:.1f} ms, {worst_kb / 1024:.1f} MB of new allocations")


if __name__ == "__main__":
    main()
