"""What an attempt was given, as an operator may see it: the task's configuration evaluated, with
every ``env.*`` value masked.

The configuration a task runs with can hold secrets: ``env.*`` is how a deployment hands a workflow
its credentials (``Authorization: "Bearer ${env.API_TOKEN}"``), so the evaluated configuration itself
is never stored. Instead the configuration is evaluated a second time, in the same scope with each
``env`` value replaced by a mark naming it (``«env.API_TOKEN»``), and that text is kept with the
attempt (``TaskRecord.shown_input``, written by the claim: no write of its own).

What this shows may differ from what ran where an expression branches on a secret's value (a
comparison with the mark, not with the secret); a configuration that does not evaluate that way is
not shown (the attempt's own evaluation reports its error). A configuration without expressions is
shown as declared, so nothing is stored for it.
"""

from __future__ import annotations

import json
from typing import Any

from .expressions import EvalContext, ExpressionError, Scope, has_templates, render

MAX_SHOWN = 4096  # characters of JSON text kept per attempt; the rest is cut (and said so)


def env_mark(name: str) -> str:
    return f"«env.{name}»"


def shown_input(config: Any, scope: Scope, ctx: EvalContext) -> str | None:
    """The JSON text of ``config`` evaluated with ``env`` masked; None when it has no expression (it
    reads as declared) or does not evaluate that way."""
    if not has_templates(config):
        return None
    env = scope.roots.get("env") or {}
    masked = Scope(roots={**scope.roots, "env": {name: env_mark(name) for name in env}}, bare=scope.bare)
    try:
        value = render(config, masked, ctx)
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    except (ExpressionError, ValueError):
        return None
    if len(text) > MAX_SHOWN:
        text = f"{text[:MAX_SHOWN]}… (cut: {len(text)} characters in all)"
    return text
