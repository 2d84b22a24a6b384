"""The one exception type the expression language raises.

Every failure - syntax, missing reference, type mismatch, limit exceeded - is an
``ExpressionError`` carrying the *full* source string it happened in and a
0-based character offset into it, so the compiler can turn it into
FILE:LINE:COL and the engine can show the user exactly where a run went wrong.
"""

from __future__ import annotations


class ExpressionError(Exception):
    """A problem in an expression, located by ``offset`` inside ``expression``."""

    def __init__(self, message: str, expression: str = "", offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.offset = offset

    def __str__(self) -> str:
        if not self.expression:
            return self.message
        return f"{self.message} (at offset {self.offset} in {self.expression!r})"

    def __reduce__(self):  # keep pickling (multiprocessing, caches) lossless
        return (type(self), (self.message, self.expression, self.offset))


class MissingReferenceError(ExpressionError):
    """A name, field or index that does not exist (or a field read on null).

    This is the only kind of error ``default(x, fallback)`` swallows, so it is a
    subclass rather than a flag: a type error inside ``default`` still fails.
    """
