"""loopline, a durable workflow engine. ``from loopline import Workflow`` is the Python builder
(loopline/builder.py, docs/python-builder.md); it is imported on first use, so that ``import loopline``
(every CLI start) stays as cheap as it was."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .builder import BuilderError, Compensation, Retry, Steps, Workflow

__all__ = ["BuilderError", "Compensation", "Retry", "Steps", "Workflow"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'loopline' has no attribute {name!r}")
