"""The engine's shape, drawn from its source: composed collaborators, no mixins, no import cycles.

Each collaborator is a class that receives what it uses; it calls only its own methods on ``self``
and reaches others through the attributes it was given, so a path through the engine can be
followed one class at a time (docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "infra" / "engine"
ALLOWED_BASES = {"Exception", "Enum", "Protocol"}


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(ENGINE.glob("*.py"))}


def _classes():
    for module, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                yield module, node


def test_no_class_of_the_engine_is_built_from_mixins():
    for module, cls in _classes():
        bases = {b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in cls.bases}
        assert bases <= ALLOWED_BASES, f"{module}.{cls.name} inherits {bases - ALLOWED_BASES}"


def test_a_collaborator_calls_only_its_own_methods_and_the_collaborators_it_was_given():
    for module, cls in _classes():
        methods = {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        given = {t.target.id for t in cls.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        for node in ast.walk(init) if init else ():
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                    isinstance(node.value, ast.Name) and node.value.id == "self":
                given.add(node.attr)
        for node in ast.walk(cls):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"):
                continue
            assert node.attr in methods | given | {"__class__"}, (
                f"{module}.{cls.name} uses self.{node.attr}, which it neither defines nor was given")


def test_the_engine_modules_import_each_other_without_a_cycle():
    graph: dict[str, set[str]] = {}
    for module, tree in _modules().items():
        graph[module] = set()
        for node in tree.body:  # module level only: an import under `if TYPE_CHECKING` does not run
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                graph[module].add(node.module or "")
                if node.module is None:
                    graph[module].update(alias.name for alias in node.names)
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if seen.get(name) == 2:
            return
        assert seen.get(name) != 1, f"import cycle: {' -> '.join(path + [name])}"
        seen[name] = 1
        for other in sorted(graph.get(name, ())):
            visit(other, path + [name])
        seen[name] = 2

    for module in graph:
        visit(module, [])
    assert graph["engine"] >= {"attempts", "outcomes", "propagate", "waits"}  # the walk saw real imports


def test_the_engine_imports_neither_aws_sdks_nor_anything_of_one_machine():
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                name = ("." * node.level) + (node.module or "")
                assert not name.startswith(("loopline", "moto", "samtranslator")), (
                    f"{module} imports {name}")
            if isinstance(node, ast.Import):
                assert all(a.name not in ("boto3", "botocore") for a in node.names), f"{module} imports boto3"
