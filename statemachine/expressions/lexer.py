"""Tokenizer for the body of one ``${ ... }``.

The lexer, not a brace-counting scan, decides where an expression ends: it
tokenizes from just after ``${`` and stops at the first ``}`` token that closes
no ``{`` opened inside the expression.  Because string literals are whole
tokens, ``${ 'x}' }`` and ``${ {'a': 1}.a }`` end where a reader expects.

Offsets in tokens and errors are absolute positions in the whole template
string, so errors point at the right column of the workflow file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ExpressionError

# Bounds that keep a hostile or mistaken workflow from costing unbounded time.
MAX_SOURCE = 10_000  # characters in one ${...} body
MAX_NUMBER_DIGITS = 100  # digits in one number literal

KEYWORDS = frozenset({"true", "false", "null", "and", "or", "not", "in"})

# Longest operators first so '===' is not read as '==' then '='.
_OPERATORS = (
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||",
    "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", ".", ",",
    "(", ")", "[", "]", "{", "}",
)
_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>" + "|".join(re.escape(o) for o in _OPERATORS) + ")",
    re.DOTALL,
)
_SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0",
    "\\": "\\", "'": "'", '"': '"', "/": "/", "\n": "",  # backslash-newline continues a line
}
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|u|.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num" | "str" | "name" | "op" | "eof"
    value: object  # int/float for num, decoded text for str, the text otherwise
    start: int
    end: int

    @property
    def text(self) -> str:
        """A name, op or string token's value, typed as the text it is."""
        return self.value if isinstance(self.value, str) else str(self.value)


def lex_expression(text: str, start: int) -> tuple[list[Token], int]:
    """Tokenize ``text`` from ``start`` (just after ``${``) to the closing ``}``.

    Returns the tokens (ending with an "eof" token placed at the closing brace)
    and the index just after that brace.
    """
    opener = start - 2  # where the "${" is: unterminated expressions point here
    tokens: list[Token] = []
    depth = 0
    pos = start
    n = len(text)
    while True:
        if pos - start > MAX_SOURCE:
            raise ExpressionError(
                f"expression longer than {MAX_SOURCE} characters", text, opener
            )
        if pos >= n:
            raise ExpressionError("unterminated '${' (missing '}')", text, opener)
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch in "'\"":
                raise ExpressionError("unterminated string literal", text, pos)
            if ch == "=":
                raise ExpressionError("unexpected '='; use '==' to compare", text, pos)
            if ch in "&|":
                raise ExpressionError(f"unexpected {ch!r}; use '{ch}{ch}'", text, pos)
            raise ExpressionError(f"unexpected character {ch!r}", text, pos)
        kind = m.lastgroup
        end = m.end()
        if kind == "ws":
            pos = end
            continue
        raw = m.group()
        if kind == "num":
            tokens.append(Token("num", _number(raw, text, pos), pos, end))
        elif kind == "str":
            tokens.append(Token("str", _unescape(raw[1:-1], text, pos + 1), pos, end))
        elif kind == "name":
            tokens.append(Token("name", raw, pos, end))
        else:
            if raw == "{":
                depth += 1
            elif raw == "}":
                if depth == 0:
                    tokens.append(Token("eof", None, pos, pos))
                    return tokens, end
                depth -= 1
            tokens.append(Token("op", raw, pos, end))
        pos = end


def _number(raw: str, text: str, pos: int) -> int | float:
    mantissa = raw.split("e")[0].split("E")[0]
    if sum(c.isdigit() for c in mantissa) > MAX_NUMBER_DIGITS:
        raise ExpressionError(
            f"number literal longer than {MAX_NUMBER_DIGITS} digits", text, pos
        )
    if "." not in raw and "e" not in raw and "E" not in raw:
        return int(raw)
    value = float(raw)
    if value in (float("inf"), float("-inf")):
        raise ExpressionError("number literal too large", text, pos)
    return value


def _unescape(body: str, text: str, body_start: int) -> str:
    """Decode backslash escapes; ``body_start`` is the offset of body[0] in text."""
    if "\\" not in body:
        return body
    out: list[str] = []
    last = 0
    pending_high: int | None = None  # a \uD8xx waiting for its low surrogate
    for m in _ESCAPE_RE.finditer(body):
        if m.start() > last:
            if pending_high is not None:
                raise ExpressionError("invalid unicode escape (lone surrogate)", text, body_start + m.start())
            out.append(body[last:m.start()])
        esc = m.group(1)
        where = body_start + m.start()
        if esc.startswith("u") and len(esc) == 5:
            code = int(esc[1:], 16)
            if pending_high is not None:
                if not 0xDC00 <= code <= 0xDFFF:
                    raise ExpressionError("invalid unicode escape (lone surrogate)", text, where)
                out.append(chr(0x10000 + ((pending_high - 0xD800) << 10) + (code - 0xDC00)))
                pending_high = None
            elif 0xD800 <= code <= 0xDBFF:
                pending_high = code
            elif 0xDC00 <= code <= 0xDFFF:
                raise ExpressionError("invalid unicode escape (lone surrogate)", text, where)
            else:
                out.append(chr(code))
        elif esc == "u":
            raise ExpressionError("invalid unicode escape: expected \\uXXXX", text, where)
        else:
            if pending_high is not None:
                raise ExpressionError("invalid unicode escape (lone surrogate)", text, where)
            if esc not in _SIMPLE_ESCAPES:
                raise ExpressionError(f"unknown escape '\\{esc}'", text, where)
            out.append(_SIMPLE_ESCAPES[esc])
        last = m.end()
    if pending_high is not None:
        raise ExpressionError("invalid unicode escape (lone surrogate)", text, body_start + last)
    out.append(body[last:])
    return "".join(out)
