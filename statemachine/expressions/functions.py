"""Built-in functions.

Each takes already-evaluated arguments plus the EvalContext and raises
ExpressionError *without* a position; the evaluator attaches the call's
offset.  ``default`` is not here: it must see its first argument unevaluated,
so the evaluator implements it.

``format(value, pattern)``:

* dates - ``value`` is an ISO 8601 string (as ``now()`` returns); moment.js
  tokens ``YYYY YY MMMM MMM MM M DD D dddd ddd HH H hh h mm m ss s SSS A a
  Z ZZ X x``; ``[text]`` is literal; other characters are copied.  The date is
  shown in the offset it was written with (UTC when it has none).
* numbers - ``0`` integer digit, ``#`` optional digit, ``,`` thousands
  grouping, ``.`` decimal point: ``'0'`` rounds to an integer, ``'0.00'`` two
  decimals, ``'#,##0.##'`` grouping with up to two decimals.  Rounding is
  half away from zero on the shortest decimal form (2.675 -> 2.68).
* anything else is an error (no ``{}`` string formatting).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid as _uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any, Callable

from statemachine import json_values

from .errors import ExpressionError
from .values import MAX_RESULT, check_number, is_number, kind, to_json

if TYPE_CHECKING:
    from .evaluator import EvalContext

# name -> (min args, max args).  The parser checks calls against this table so
# an unknown function or a wrong argument count is a compile-time error.
SIGNATURES: dict[str, tuple[int, int]] = {
    "now": (0, 0),
    "format": (2, 2),
    "json_parse": (1, 1),
    "json_stringify": (1, 1),
    "base64_encode": (1, 1),
    "base64_decode": (1, 1),
    "hash": (1, 2),
    "random": (0, 2),  # 0 or 2: the parser rejects a single argument
    "uuid": (0, 0),
    "length": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "default": (2, 2),
    "merge": (2, 2),
}

MAX_JSON_INPUT = 1_000_000  # bytes of text json_parse accepts
_MAX_PATTERN = 100  # characters of a format() pattern


def _string_arg(fn: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{fn}() needs a string, not {kind(value)}")
    return value


def _now(args: list, ctx: "EvalContext") -> str:
    return iso_utc(ctx.now)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with "Z"; milliseconds only when non-zero."""
    moment = moment.astimezone(timezone.utc)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    millis = moment.microsecond // 1000
    return text + (f".{millis:03d}Z" if millis else "Z")


# --- format ------------------------------------------------------------------

_DATE_TOKENS = re.compile(
    r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|DD|D|dddd|ddd|HH|H|hh|h|mm|m|ss|s|SSS|A|a|ZZ|Z|X|x"
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NUMBER_PATTERN = re.compile(r"([#0,]*0[#0,]*|[#,]*#)(?:\.([0#]+))?|\.([0#]+)")


def _offset_text(moment: datetime, sep: str) -> str:
    delta = moment.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"


def _date_token(token: str, m: datetime) -> str:
    if token.startswith("["):
        return token[1:-1]
    hour12 = m.hour % 12 or 12
    table: dict[str, Callable[[], str]] = {
        "YYYY": lambda: f"{m.year:04d}", "YY": lambda: f"{m.year % 100:02d}",
        "MMMM": lambda: _MONTHS[m.month - 1], "MMM": lambda: _MONTHS[m.month - 1][:3],
        "MM": lambda: f"{m.month:02d}", "M": lambda: str(m.month),
        "DD": lambda: f"{m.day:02d}", "D": lambda: str(m.day),
        "dddd": lambda: _DAYS[m.weekday()], "ddd": lambda: _DAYS[m.weekday()][:3],
        "HH": lambda: f"{m.hour:02d}", "H": lambda: str(m.hour),
        "hh": lambda: f"{hour12:02d}", "h": lambda: str(hour12),
        "mm": lambda: f"{m.minute:02d}", "m": lambda: str(m.minute),
        "ss": lambda: f"{m.second:02d}", "s": lambda: str(m.second),
        "SSS": lambda: f"{m.microsecond // 1000:03d}",
        "A": lambda: "AM" if m.hour < 12 else "PM", "a": lambda: "am" if m.hour < 12 else "pm",
        "Z": lambda: _offset_text(m, ":"), "ZZ": lambda: _offset_text(m, ""),
        "X": lambda: str(int(m.timestamp())), "x": lambda: str(int(m.timestamp() * 1000)),
    }
    return table[token]()


def parse_iso(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (naive means UTC), or None."""
    if not 8 <= len(text) <= 40 or not text[:4].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def format_date(moment: datetime, pattern: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _DATE_TOKENS.finditer(pattern):
        out.append(pattern[pos:m.start()])
        out.append(_date_token(m.group(), moment))
        pos = m.end()
    out.append(pattern[pos:])
    return "".join(out)


def format_number(value: int | float, pattern: str) -> str:
    m = _NUMBER_PATTERN.fullmatch(pattern)
    if m is None:
        raise ExpressionError(
            f"unsupported number pattern {pattern!r} (use digits '0', '#', ',' and '.', e.g. '0.00')"
        )
    int_part = m.group(1) or ""
    dec_part = m.group(2) or m.group(3) or ""
    min_int = int_part.count("0")
    min_dec = dec_part.count("0")
    max_dec = len(dec_part)
    if "0" in dec_part and "#" in dec_part[: dec_part.rindex("0")]:
        raise ExpressionError(f"unsupported number pattern {pattern!r} ('#' must follow '0' after the point)")
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    context = Context(prec=1000)
    rounded = exact.quantize(Decimal(1).scaleb(-max_dec), rounding=ROUND_HALF_UP, context=context)
    negative = rounded < 0
    digits = f"{abs(rounded):f}"
    whole, _, frac = digits.partition(".")
    frac = frac.ljust(min_dec, "0")
    while len(frac) > min_dec and frac.endswith("0"):
        frac = frac[:-1]
    whole = whole.lstrip("0").rjust(min_int, "0")
    if "," in int_part and whole:
        groups: list[str] = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        whole = ",".join([whole] + groups)
    text = whole + ("." + frac if frac else "")
    if not text.strip("0.,"):
        negative = False  # no "-0.00"
    return ("-" if negative else "") + (text or "0")


def _format(args: list, ctx: "EvalContext") -> str:
    value, pattern = args
    pattern = _string_arg("format", pattern)
    if len(pattern) > _MAX_PATTERN:
        raise ExpressionError(f"format() pattern longer than {_MAX_PATTERN} characters")
    if is_number(value):
        return format_number(value, pattern)
    if isinstance(value, str):
        moment = parse_iso(value)
        if moment is not None:
            return format_date(moment, pattern)
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ExpressionError(f"format() needs a number or an ISO 8601 date, got {shown!r}")
    raise ExpressionError(f"format() needs a number or an ISO 8601 date, not {kind(value)}")


# --- JSON and encodings ------------------------------------------------------

def _json_parse(args: list, ctx: "EvalContext") -> Any:
    text = _string_arg("json_parse", args[0])
    if len(text) > MAX_JSON_INPUT or len(text.encode("utf-8", "surrogatepass")) > MAX_JSON_INPUT:
        raise ExpressionError(f"json_parse() input larger than {MAX_JSON_INPUT} bytes")
    try:
        # The language never yields NaN or an infinity: 1e999 is refused, as NaN and Infinity are.
        return json_values.loads(text)
    except json.JSONDecodeError as exc:
        raise ExpressionError(f"json_parse(): invalid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise ExpressionError("json_parse(): JSON nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, numbers beyond a float, integers too long to convert
        raise ExpressionError(f"json_parse(): invalid JSON: {exc}") from None


def _json_stringify(args: list, ctx: "EvalContext") -> str:
    return to_json(args[0])


def _base64_encode(args: list, ctx: "EvalContext") -> str:
    text = _string_arg("base64_encode", args[0])
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _base64_decode(args: list, ctx: "EvalContext") -> str:
    text = "".join(_string_arg("base64_decode", args[0]).split())
    text += "=" * (-len(text) % 4)  # tolerate stripped padding
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ExpressionError("base64_decode(): not valid base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ExpressionError("base64_decode(): the decoded bytes are not UTF-8 text") from None


_HASHES = {"sha256": "sha256", "sha1": "sha1", "md5": "md5", "sha512": "sha512"}


def _hash(args: list, ctx: "EvalContext") -> str:
    value = args[0]
    algorithm = args[1] if len(args) > 1 else "sha256"
    if not isinstance(algorithm, str) or algorithm.lower().replace("-", "") not in _HASHES:
        raise ExpressionError(f"hash() algorithm must be one of {', '.join(_HASHES)}, not {algorithm!r}")
    text = value if isinstance(value, str) else to_json(value)
    name = _HASHES[algorithm.lower().replace("-", "")]
    return hashlib.new(name, text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


# --- randomness (drawn from the context so replays repeat it) ----------------

def _random(args: list, ctx: "EvalContext") -> int | float:
    if not args:
        return ctx.rng.random()
    low, high = args
    if not (is_number(low) and is_number(high)):
        raise ExpressionError(f"random() needs numbers, not {kind(low)} and {kind(high)}")
    if low > high:
        raise ExpressionError(f"random(): min {low} is greater than max {high}")
    if isinstance(low, int) and isinstance(high, int):
        return ctx.rng.randint(low, high)
    return check_number(ctx.rng.uniform(low, high))  # random(-1e308, 1e308) would overflow to infinity


def _new_uuid(args: list, ctx: "EvalContext") -> str:
    return str(_uuid.UUID(int=ctx.rng.getrandbits(128), version=4))


# --- small helpers -------------------------------------------------------------

def _length(args: list, ctx: "EvalContext") -> int:
    value = args[0]
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value)
    raise ExpressionError(f"length() needs a string, list or object, not {kind(value)}")


def _merge(args: list, ctx: "EvalContext") -> dict:
    """A shallow merge of two objects, the second's keys winning; null counts as {} (how a graph
    document's node output joins the shared context: docs/graph-form.md)."""
    parts = [{} if arg is None else arg for arg in args]
    if not all(isinstance(part, dict) for part in parts):
        raise ExpressionError("merge() takes two objects (or null)")
    return {**parts[0], **parts[1]}


def _lower(args: list, ctx: "EvalContext") -> str:
    return _string_arg("lower", args[0]).lower()


def _upper(args: list, ctx: "EvalContext") -> str:
    return _string_arg("upper", args[0]).upper()


FUNCTIONS: dict[str, Callable[[list, "EvalContext"], Any]] = {
    "now": _now,
    "format": _format,
    "json_parse": _json_parse,
    "json_stringify": _json_stringify,
    "base64_encode": _base64_encode,
    "base64_decode": _base64_decode,
    "hash": _hash,
    "random": _random,
    "uuid": _new_uuid,
    "length": _length,
    "merge": _merge,
    "lower": _lower,
    "upper": _upper,
}


def call(name: str, args: list, ctx: "EvalContext") -> Any:
    result = FUNCTIONS[name](args, ctx)
    if isinstance(result, str) and len(result) > MAX_RESULT:
        raise ExpressionError("result too large")
    return result
