"""The loopline expression language: ``${ ... }`` inside workflow strings.

Pure Python: the source is tokenized, parsed and interpreted here, never handed
to Python to run.  Modules, one concern each:

* ``errors``     - ExpressionError (message, expression, offset)
* ``lexer``      - tokens of one ``${...}`` body; finds where it ends
* ``parser``     - tokens -> immutable tree (depth-bounded Pratt parser)
* ``template``   - strings with ``${...}`` parts; static helpers for the compiler
* ``values``     - JSON-like value model: truthiness, equality, JS formatting
* ``evaluator``  - tree + Scope + EvalContext -> value
* ``functions``  - the built-in functions
"""

from .errors import ExpressionError, MissingReferenceError
from .evaluator import EvalContext, Scope, evaluate, render, seed_of
from .template import (
    Template,
    function_calls,
    has_templates,
    is_template,
    member_references,
    parse_template,
    root_names,
    task_references,
)
from .values import to_display, to_json, truthy

__all__ = [
    "EvalContext",
    "seed_of",
    "ExpressionError",
    "MissingReferenceError",
    "Scope",
    "Template",
    "evaluate",
    "function_calls",
    "has_templates",
    "is_template",
    "parse_template",
    "render",
    "root_names",
    "task_references",
    "member_references",
    "to_display",
    "to_json",
    "truthy",
]
