"""moto's DynamoDB UpdateItem, cheaper for an expression it has seen, with the same answers.

The engine's writes use a handful of UpdateExpression strings, each with its own values on every
call. moto 5 pays for the string itself on every call (bench/profile_transition.py: UpdateItem was
two thirds of an embedded transition's wall time):

- it parses the expression twice per request (``UpdateExpressionParser.make``, in the response
  handler and again in the backend), though the tree depends on the string alone;
- ``UpdateExpressionValidator`` deep-copies that tree and walks it ten times, and three of those
  walks look at the tree alone (ActionCountValidator, OverlappingPathsValidator,
  UpdateHashRangeKeyValidator: they raise or return the node unchanged), two of them at every
  level of moto's right-nested action lists, so their cost grows with the square of the clauses;
- every walk rebuilds its processor's map of node types (``_processing_map()``) at every node, and
  asks of each node whether it is a ``Node`` (an ABC, whose isinstance runs Python code).

Here: a parsed tree is kept per string (moto's two readers of it never change it: the response
handler reads its clauses, and the validator works on its own copy); the validator copies a kept
tree by unpickling it, which builds the same objects as ``deepcopy`` does, faster; the three walks
that look at the tree alone are skipped for a tree, names and key schema that passed them before
(one that raised is walked again, so the same error comes back); and a walk builds its map once
and asks both questions once per node class (the answers depend on the class alone: nothing
registers virtual subclasses of moto's nodes), processing the same nodes in the same order.
Installed once per process (EmbeddedAws), not taken back: moto answers as before, only sooner
(tests/component/test_moto_dynamodb_speedups.py compares the answers with and without).
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

from .moto_patching import install_once

# Expression strings come from the engine's code, a few dozen at most; past this many, new ones are
# parsed as moto parses them, so a kept tree (keyed by identity below) is never dropped and reused.
MAX_KEPT = 1024
MAX_PASSED = 8 * MAX_KEPT  # (tree, names, key schema) triples: names are fixed per expression in the engine
_UNSEEN = object()
_EXPRESSION_ONLY = 3  # get_ast_processors()'s first three: ActionCount, OverlappingPaths, UpdateHashRangeKey
# Module state, not closures, so that a test can see the kept trees and the passed checks being used.
trees: dict[str, Any] = {}
pickled: dict[int, bytes] = {}  # id(kept tree) -> its pickle: kept trees live as long as the process
passed: set[tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]]] = set()


def install_update_expression_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    lock = threading.Lock()
    # A walk asks of every node whether it is a Node (an ABC: a slow isinstance) and which of the
    # processor's node classes it is; both depend on the node's class alone, asked once per class.
    is_node: dict[type, bool] = {}
    handled: dict[tuple[type, type], Any] = {}  # (processor class, node class) -> its map's first matching key
    original_make = UpdateExpressionParser.make.__func__

    def make(cls: type, expression_str: str) -> Any:
        tree = trees.get(expression_str)
        if tree is not None:
            return tree
        tree = original_make(cls, expression_str)  # a syntax error raises here, every time, as before
        with lock:
            if len(trees) < MAX_KEPT and expression_str not in trees:
                pickled[id(tree)] = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
                trees[expression_str] = tree
            return trees.get(expression_str, tree)

    UpdateExpressionParser.make = classmethod(make)

    original_init = validators.Validator.__init__

    def validator_init(self: Any, expression: Any, expression_attribute_names: Any,
                       expression_attribute_values: Any, item: Any, table: Any) -> None:
        kept = pickled.get(id(expression))
        if kept is None or not isinstance(self, validators.UpdateExpressionValidator):
            original_init(self, expression, expression_attribute_names, expression_attribute_values, item, table)
            self.speedup_key = None
            return
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = pickle.loads(kept)  # a copy of its own, as deepcopy(expression) made
        self.__dict__["speedup_key"] = (id(expression), tuple(sorted((expression_attribute_names or {}).items())),
                                        tuple(table.table_key_attrs))

    def validate(self: Any) -> Any:
        node = self.node_to_validate
        key = getattr(self, "speedup_key", None)
        processors = self.processors
        if key is not None and key in passed:
            processors = processors[_EXPRESSION_ONLY:]
        for position, processor in enumerate(processors):
            node = processor.traverse(node)
            if key is not None and processors is self.processors and position == _EXPRESSION_ONLY - 1 \
                    and len(passed) < MAX_PASSED:
                passed.add(key)
        return node

    _check_processors(validators)
    validators.Validator.__init__ = validator_init  # type: ignore[method-assign]
    validators.UpdateExpressionValidator.validate = validate  # type: ignore[method-assign]

    def processing_map(self: Any) -> dict[type, Any]:
        kept = self.__dict__.get("_speedup_map")
        if kept is None:
            kept = self.__dict__["_speedup_map"] = self._processing_map()
        return kept

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        known = is_node.get(kind)
        if known is None:
            known = is_node[kind] = isinstance(node, Node)
        if not known:
            return node
        parent_node = node.parent
        if node.children is not None:
            for i, child_node in enumerate(node.children):
                self.pre_processing_of_child(node, i)
                self.traverse_node_recursively(child_node, i)
        key = (type(self), kind)
        class_key = handled.get(key, _UNSEEN)
        if class_key is _UNSEEN:
            class_key = handled[key] = next((k for k in processing_map(self) if issubclass(kind, k)), None)
        if class_key is not None:
            node = processing_map(self)[class_key](node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively


def _check_processors(validators: Any) -> None:
    """The skip above stands on moto's order of processors: refuse to install on a moto that changed it."""
    names = [type(p).__name__ for p in validators.UpdateExpressionValidator.get_ast_processors(_Probe())]
    expected = ["ActionCountValidator", "OverlappingPathsValidator", "UpdateHashRangeKeyValidator"]
    if names[:_EXPRESSION_ONLY] != expected or any(name in expected for name in names[_EXPRESSION_ONLY:]):
        raise RuntimeError(f"moto's UpdateExpressionValidator runs {names}: moto_update_expressions.py needs review")


class _Probe:
    expression_attribute_names: dict[str, str] = {}
    expression_attribute_values: dict[str, Any] = {}
    item = None

    class table:  # noqa: N801 (stands for a moto Table)
        table_key_attrs: list[str] = []
        attr: list[dict[str, str]] = []
        attribute_keys: list[str] = []
