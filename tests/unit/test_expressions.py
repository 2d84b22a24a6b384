"""The expression language (statemachine.expressions): syntax, semantics, errors, limits."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine.expressions import (
    EvalContext,
    ExpressionError,
    MissingReferenceError,
    Scope,
    evaluate,
    is_template,
    parse_template,
    render,
    root_names,
    task_references,
    to_display,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)

INPUTS = {
    "n": 3,
    "f": 2.5,
    "name": "Ann",
    "empty": "",
    "items": [1, 2, 3],
    "nested": {"a": {"b": [10, {"c": "deep"}]}},
    "obj": {"length": 9, "x": 1},
    "o": {"a": 1, "b": 2},
    "zero": 0,
    "nothing": None,
    "flag": True,
    "dash-key": "dashed",
}
TASKS = {
    "fetch": {"status": "COMPLETED", "output": {"rows": [1, 2], "count": 2}},
    "skipped": {"status": "SKIPPED", "output": None},
    "a-b": {"status": "COMPLETED", "output": "hyphen"},
}


def scope(**extra_roots):
    roots = {"inputs": INPUTS, "tasks": TASKS, "variables": {"v": "var"}, "env": {"STAGE": "dev"}}
    roots.update(extra_roots)
    return Scope(roots=roots, bare=[{"result": 42, "v": "shadowed-by-layer"}, {"v": "var", "n": 99}])


def ev(expr: str, **extra):
    return evaluate(expr, scope(**extra), EvalContext(now=NOW, seed=7))


def err(expr: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        ev(expr)
    return info.value


# --- literals -----------------------------------------------------------------

@pytest.mark.parametrize(
    "src, expected",
    [
        ("${1}", 1),
        ("${0}", 0),
        ("${1.5}", 1.5),
        ("${1e3}", 1000.0),
        ("${2.5E-1}", 0.25),
        ("${-4}", -4),
        ("${'single'}", "single"),
        ('${"double"}', "double"),
        (r"${'it\'s'}", "it's"),
        (r'${"say \"hi\""}', 'say "hi"'),
        (r"${'a\nb\tc\\d'}", "a\nb\tc\\d"),
        (r"${'\u00e9\u4e2d'}", "é中"),
        (r"${'\ud83d\ude00'}", "\U0001F600"),
        ("${'x}'}", "x}"),
        ("${'${nested}'}", "${nested}"),
        ("${true}", True),
        ("${false}", False),
        ("${null}", None),
        ("${[]}", []),
        ("${[1, 'a', [true, null]]}", [1, "a", [True, None]]),
        ("${[1, 2,]}", [1, 2]),
        ("${{}}", {}),
        ("${{a: 1, 'b c': [2], \"d\": {e: null}}}", {"a": 1, "b c": [2], "d": {"e": None}}),
        ("${ {'a': 1}.a }", 1),
        ("${ {in: 1, null: 2}.in }", 1),
        ("${   1   }", 1),
    ],
)
def test_literals(src, expected):
    result = ev(src)
    assert result == expected
    assert type(result) is type(expected)


# --- operators and precedence ---------------------------------------------------

@pytest.mark.parametrize(
    "src, expected",
    [
        # arithmetic
        ("${1 + 2}", 3),
        ("${5 - 7}", -2),
        ("${3 * 4}", 12),
        ("${7 / 2}", 3.5),
        ("${4 / 2}", 2),
        ("${1.5 + 1.5}", 3.0),
        ("${7 % 3}", 1),
        ("${-7 % 3}", -1),  # sign of the dividend, as in JavaScript
        ("${7 % -3}", 1),
        ("${7.5 % 2}", 1.5),
        ("${-inputs.n}", -3),
        ("${+inputs.n}", 3),
        ("${- -2}", 2),
        ("${1 + 2 * 3}", 7),
        ("${(1 + 2) * 3}", 9),
        ("${10 - 4 - 3}", 3),
        ("${100 / 10 / 5}", 2),
        ("${2 * 3 % 4}", 2),
        ("${1 - -1}", 2),
        ("${inputs.n * inputs.f}", 7.5),
        # concatenation
        ("${'a' + 'b'}", "ab"),
        ("${'n=' + 1}", "n=1"),
        ("${1 + 'x'}", "1x"),
        ("${'v' + 2.0}", "v2"),
        ("${'b' + true + null}", "btruenull"),
        ("${'l=' + [1, 2]}", "l=[1,2]"),
        ("${'o=' + {a: 1}}", 'o={"a":1}'),
        ("${1 + 2 + 'x'}", "3x"),
        ("${'x' + 1 + 2}", "x12"),
        # comparison
        ("${1 == 1}", True),
        ("${1 == 1.0}", True),
        ("${1 == '1'}", False),
        ("${true == 1}", False),
        ("${null == null}", True),
        ("${[1, {a: [2]}] == [1, {a: [2]}]}", True),
        ("${{a: 1, b: 2} == {b: 2, a: 1}}", True),
        ("${[1, 2] == [2, 1]}", False),
        ("${1 != 2}", True),
        ("${1 === 1}", True),
        ("${1 !== 1}", False),
        ("${1 < 2}", True),
        ("${2 <= 2}", True),
        ("${3 > 2.5}", True),
        ("${2 >= 3}", False),
        ("${'abc' < 'abd'}", True),
        ("${1 + 1 == 2}", True),
        ("${1 < 2 == true}", True),
        # in
        ("${2 in inputs.items}", True),
        ("${5 in inputs.items}", False),
        ("${[1] in [[1], 2]}", True),
        ("${'nn' in 'Annnn'}", True),
        ("${'z' in inputs.name}", False),
        ("${'a' in inputs.o}", True),
        ("${'zz' in inputs.o}", False),
        ("${5 not in inputs.items}", True),
        ("${'a' not in inputs.o}", False),
        # logical (&& || return an operand; ! returns a boolean)
        ("${true && false}", False),
        ("${true && 'yes'}", "yes"),
        ("${0 && 'never'}", 0),
        ("${null || 'fallback'}", "fallback"),
        ("${inputs.name || 'anon'}", "Ann"),
        ("${inputs.empty || 'anon'}", "anon"),
        ("${'' or 'x'}", "x"),
        ("${1 and 2}", 2),
        ("${!true}", False),
        ("${!0}", True),
        ("${!'x'}", False),
        ("${not true}", False),
        ("${!inputs.flag && true}", False),
        ("${!false && true}", True),
        ("${true || false && false}", True),  # && binds tighter
        ("${(true || false) && false}", False),
        ("${false and true or true}", True),
        ("${not 1 == 2}", True),  # Python-style: not (1 == 2)
        ("${!1 == false}", True),  # JS-style: (!1) == false
        ("${not false and false}", False),
        ("${true && 1 < 2}", True),
        # short circuit: the right side is not evaluated
        ("${false && missing.name}", False),
        ("${true || missing.name}", True),
        ("${1 ? 'a' : missing}", "a"),
        # ternary
        ("${true ? 1 : 2}", 1),
        ("${false ? 1 : 2}", 2),
        ("${inputs.n > 2 ? 'big' : 'small'}", "big"),
        ("${false ? 1 : true ? 2 : 3}", 2),
        ("${false ? 1 : false ? 2 : 3}", 3),
        ("${true ? false ? 1 : 2 : 3}", 2),
        ("${1 + 1 == 2 ? 'y' : 'n'}", "y"),
        ("${null || 0 ? 'a' : 'b'}", "b"),
        ("${(true ? 1 : 2) + 10}", 11),
    ],
)
def test_operators(src, expected):
    result = ev(src)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "value, truthy",
    [(None, False), (False, False), (0, False), (0.0, False), ("", False), ([], False), ({}, False),
     (True, True), (1, True), (-1, True), (0.1, True), ("0", True), ("false", True), ([0], True), ({"a": None}, True)],
)
def test_truthiness_is_python_like(value, truthy):
    assert ev("${x ? 'T' : 'F'}", x=value) == ("T" if truthy else "F")
    assert ev("${!x}", x=value) is (not truthy)


# --- names, member access, indexing -------------------------------------------------

@pytest.mark.parametrize(
    "src, expected",
    [
        ("${inputs.n}", 3),
        ("${inputs['n']}", 3),
        ('${inputs["dash-key"]}', "dashed"),
        ("${inputs.nested.a.b[1].c}", "deep"),
        ("${inputs.nested['a']['b'][0]}", 10),
        ("${inputs.items[inputs.items[0]]}", 2),
        ("${inputs.items[1.0]}", 2),
        ("${inputs.name[0]}", "A"),
        ("${inputs.o[1 == 1 ? 'a' : 'b']}", 1),
        ("${x[1]}", "one"),  # a number key reads the string key, as in JavaScript
        ("${x.length}", 1),
        ("${tasks.fetch.output.rows}", [1, 2]),
        ("${tasks.fetch.status}", "COMPLETED"),
        ("${tasks['a-b'].output}", "hyphen"),
        ("${tasks.skipped.output}", None),
        ("${variables.v}", "var"),
        ("${env.STAGE}", "dev"),
        ("${result}", 42),  # bare name from the first layer
        ("${v}", "shadowed-by-layer"),  # first layer wins
        ("${n}", 99),  # later layer
        ("${inputs}", INPUTS),  # roots beat bare layers
        # .length
        ("${inputs.items.length}", 3),
        ("${inputs.name.length}", 3),
        ("${inputs.o.length}", 2),
        ("${inputs.obj.length}", 9),  # an own "length" key wins
        ("${inputs.empty.length}", 0),
        ("${[].length}", 0),
        ("${'héllo'.length}", 5),
        ("${inputs.items['length']}", 3),
        ("${tasks.fetch.output.rows.length > 1}", True),
    ],
)
def test_member_access(src, expected):
    assert ev(src, x={"1": "one"}) == expected


def test_no_python_attribute_access():
    class Secret:
        password = "hunter2"

        def __str__(self):
            return "<secret>"

    e = err_with("${thing.password}", thing=Secret())
    assert "cannot read 'password'" in e.message
    e = err_with("${inputs.__class__}")
    assert "no field '__class__'" in e.message
    e = err_with("${inputs.items.append}")
    assert "no field 'append'" in e.message
    e = err_with("${inputs.name.upper}")
    assert "no field 'upper'" in e.message


def err_with(expr: str, **extra) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        ev(expr, **extra)
    return info.value


# --- typed results and interpolation -------------------------------------------------

@pytest.mark.parametrize(
    "src, expected",
    [
        ("plain text", "plain text"),
        ("", ""),
        ("n=${1+1}", "n=2"),
        ("${1}${2}", "12"),
        ("a ${inputs.name} b", "a Ann b"),
        ("${inputs.f}!", "2.5!"),
        ("x=${2.0}", "x=2"),
        ("x=${4/2}", "x=2"),
        ("x=${1/3}", "x=0.3333333333333333"),
        ("x=${0.1 + 0.2}", "x=0.30000000000000004"),
        ("x=${1e21}", "x=1e+21"),
        ("x=${1e-7}", "x=1e-7"),
        ("x=${0.000001}", "x=0.000001"),
        ("x=${-1.5}", "x=-1.5"),
        ("x=${123456789012345680000.0}", "x=123456789012345680000"),
        ("b=${true}/${false}", "b=true/false"),
        ("n=${null}", "n=null"),
        ("l=${inputs.items}", "l=[1,2,3]"),
        ("o=${{a: 'é', b: [1.0, null]}}", 'o={"a":"é","b":[1,null]}'),
        (" ${1} ", " 1 "),  # text around, even whitespace, makes a string
        ("cost: $5 ${'ok'}", "cost: $5 ok"),
        ("$${HOME} is ${inputs.name}", "${HOME} is Ann"),  # $${ escapes a literal ${
        ("echo $${HOME}", "echo ${HOME}"),
        ("${'}'}-${'{'}", "}-{"),
    ],
)
def test_interpolation(src, expected):
    assert ev(src) == expected


@pytest.mark.parametrize(
    "src, expected",
    [
        ("${inputs.items}", [1, 2, 3]),
        ("${inputs.n}", 3),
        ("${inputs.f}", 2.5),
        ("${inputs.flag}", True),
        ("${inputs.nothing}", None),
        ("${inputs.o}", {"a": 1, "b": 2}),
        ("${ inputs.name }", "Ann"),
    ],
)
def test_single_expression_keeps_type(src, expected):
    result = ev(src)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "null"), (True, "true"), (False, "false"), (23, "23"), (23.0, "23"), (-0.0, "0"),
        (2.5, "2.5"), (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (1e300, "1e+300"), (123.456, "123.456"),
        ("s", "s"), ([1, "a", None], '[1,"a",null]'), ({"k": [1.0, True]}, '{"k":[1,true]}'),
        ({"é": "ü"}, '{"é":"ü"}'), ((1, 2), "[1,2]"), ({1: "x"}, '{"1":"x"}'),
        (float("nan"), "NaN"), ([float("inf")], "[null]"),
    ],
)
def test_to_display(value, text):
    assert to_display(value) == text


def test_evaluate_passes_non_strings_through():
    assert evaluate(True, scope()) is True
    assert evaluate(5, scope()) == 5
    assert evaluate(None, scope()) is None


def test_render_recurses_values_not_keys():
    value = {
        "${inputs.name}": "${inputs.n}",
        "list": ["${inputs.items}", "x=${inputs.f}", 7, None, {"deep": "${tasks.fetch.output.count}"}],
        "plain": "text",
        "tuple": ("${1+1}",),
    }
    assert render(value, scope(), EvalContext(now=NOW)) == {
        "${inputs.name}": 3,
        "list": [[1, 2, 3], "x=2.5", 7, None, {"deep": 2}],
        "plain": "text",
        "tuple": [2],
    }
    assert render("${1 + 1}", scope()) == 2
    assert render(5, scope()) == 5


# --- functions -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "src, expected",
    [
        ("${now()}", "2026-11-22T10:00:00Z"),
        ("${format(now(), 'YYYY-MM-DD')}", "2026-11-22"),
        ("${format('2026-03-04T05:06:07.089Z', 'YYYY/MM/DD HH:mm:ss.SSS')}", "2026/03/04 05:06:07.089"),
        ("${format('2026-03-04T15:06:07Z', 'YY M D H h hh A a m s')}", "26 3 4 15 3 03 PM pm 6 7"),
        ("${format('2026-03-04', 'dddd ddd MMMM MMM')}", "Wednesday Wed March Mar"),
        ("${format('2026-03-04T05:06:07+02:00', 'HH:mm Z ZZ')}", "05:06 +02:00 +0200"),
        ("${format('2026-03-04T05:06:07', 'HH:mm Z')}", "05:06 +00:00"),
        ("${format('2026-03-04T05:06:07Z', '[Today is] DD.MM.')}", "Today is 04.03."),
        ("${format('1970-01-01T00:00:10Z', 'X x')}", "10 10000"),
        ("${format(3.14159, '0.00')}", "3.14"),
        ("${format(2.675, '0.00')}", "2.68"),
        ("${format(2.5, '0')}", "3"),
        ("${format(-2.5, '0')}", "-3"),
        ("${format(7, '0.00')}", "7.00"),
        ("${format(7, '000')}", "007"),
        ("${format(1234567.891, '#,##0.00')}", "1,234,567.89"),
        ("${format(1234.5, '#,##0.##')}", "1,234.5"),
        ("${format(1234, '#,##0.##')}", "1,234"),
        ("${format(0.5, '#.00')}", ".50"),
        ("${format(-0.001, '0.00')}", "0.00"),
        ("${format(0.25, '.0')}", ".3"),
        ("${format(1.5, '0.0#')}", "1.5"),
        ("${format(1.256, '0.0#')}", "1.26"),
        ("${format(1e20, '#,##0')}", "100,000,000,000,000,000,000"),
        ("${json_parse('{\"a\": [1, 2.5, true, null]}')}", {"a": [1, 2.5, True, None]}),
        ("${json_parse('\"s\"')}", "s"),
        ("${json_parse('3')}", 3),
        ("${json_parse(json_stringify(inputs.nested))}", INPUTS["nested"]),
        ("${json_stringify({a: [1, 2.0, 'é'], b: null})}", '{"a":[1,2,"é"],"b":null}'),
        ("${json_stringify('x')}", '"x"'),
        ("${json_stringify(1.5)}", "1.5"),
        ("${base64_encode('hello')}", "aGVsbG8="),
        ("${base64_encode('héllo')}", "aMOpbGxv"),
        ("${base64_decode('aGVsbG8=')}", "hello"),
        ("${base64_decode('aGVsbG8')}", "hello"),  # missing padding tolerated
        ("${base64_decode(base64_encode('✓ ünïcode'))}", "✓ ünïcode"),
        ("${hash('abc')}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("${hash('abc', 'sha256')}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("${hash('abc', 'sha1')}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("${hash('abc', 'md5')}", "900150983cd24fb0d6963f7d28e17f72"),
        ("${hash('abc', 'SHA-1')}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("${hash('abc', 'sha512').length}", 128),
        ("${hash({a: 1}) == hash('{\"a\":1}')}", True),
        ("${length('abc')}", 3),
        ("${length([1, 2])}", 2),
        ("${length({a: 1})}", 1),
        ("${length(inputs.obj)}", 2),  # length() counts keys, even with a "length" key
        ("${lower('ÀBC')}", "àbc"),
        ("${upper('abc')}", "ABC"),
        ("${default(inputs.missing, 'fb')}", "fb"),
        ("${default(inputs.nothing, 'fb')}", "fb"),
        ("${default(inputs.zero, 'fb')}", 0),
        ("${default(inputs.empty, 'fb')}", ""),
        ("${default(nope, 1)}", 1),
        ("${default(inputs.missing.deeper[3], 'fb')}", "fb"),
        ("${default(inputs.items[10], -1)}", -1),
        ("${default(inputs.items[-1], -1)}", -1),
        ("${default(tasks.skipped.output.y, 'none')}", "none"),
        ("${default(tasks.nope.output, [])}", []),
        ("${default(inputs.n, missing_fallback_not_evaluated)}", 3),
        ("${default(default(a, b), 'c')}", "c"),
        ("${default(inputs.n.x, 5)}", 5),
    ],
)
def test_functions(src, expected):
    assert ev(src) == expected


def test_now_formatting():
    ctx = EvalContext(now=datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=timezone.utc))
    assert evaluate("${now()}", scope(), ctx) == "2026-01-02T03:04:05.678Z"
    # a non-UTC clock is shown in UTC; a naive one is taken as UTC
    ctx = EvalContext(now=datetime(2026, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    assert evaluate("${now()}", scope(), ctx) == "2026-01-02T10:00:00Z"
    assert evaluate("${now()}", scope(), EvalContext(now=datetime(2026, 1, 2))) == "2026-01-02T00:00:00Z"
    assert evaluate("${now()}", scope()) == "1970-01-01T00:00:00Z"  # no ctx: the epoch


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_random_and_uuid_are_deterministic_per_context():
    templates = {"a": "${uuid()}", "b": ["${random(1, 6)}", "${random(0.5, 1.5)}", "${random()}"], "c": "${uuid()}"}
    first = render(templates, scope(), EvalContext(now=NOW, seed=123))
    again = render(templates, scope(), EvalContext(now=NOW, seed=123))
    other = render(templates, scope(), EvalContext(now=NOW, seed=124))
    assert first == again
    assert first != other
    assert UUID_RE.match(first["a"]) and uuid.UUID(first["a"]).version == 4
    assert first["a"] != first["c"]  # one context draws a sequence
    die, uniform, unit = first["b"]
    assert isinstance(die, int) and 1 <= die <= 6
    assert isinstance(uniform, float) and 0.5 <= uniform <= 1.5
    assert 0 <= unit < 1
    # separate evaluate calls on fresh equal contexts repeat the sequence
    ctx1, ctx2 = EvalContext(now=NOW, seed=5), EvalContext(now=NOW, seed=5)
    seq1 = [evaluate("${uuid()}", scope(), ctx1) for _ in range(3)]
    seq2 = [evaluate("${uuid()}", scope(), ctx2) for _ in range(3)]
    assert seq1 == seq2 and len(set(seq1)) == 3
    assert [evaluate("${uuid()}", scope(), ctx1.fresh()) for _ in range(1)] == seq1[:1]
    assert ctx1 == ctx2  # the generator is not part of equality


def test_random_int_bounds_inclusive():
    ctx = EvalContext(now=NOW, seed=1)
    seen = {evaluate("${random(1, 3)}", scope(), ctx) for _ in range(200)}
    assert seen == {1, 2, 3}
    assert evaluate("${random(4, 4)}", scope(), ctx) == 4


@pytest.mark.parametrize(
    "src, fragment",
    [
        ("${format(true, '0')}", "format() needs a number or an ISO 8601 date"),
        ("${format('hello', '0')}", "format() needs a number or an ISO 8601 date"),
        ("${format(1, 'x{}')}", "unsupported number pattern"),
        ("${format(1, '0.#0')}", "unsupported number pattern"),
        ("${format(1, '{}')}", "unsupported number pattern"),
        ("${format(1, 5)}", "format() needs a string"),
        ("${json_parse('{bad')}", "invalid JSON"),
        ("${json_parse('NaN')}", "invalid JSON"),
        ("${json_parse(1)}", "json_parse() needs a string"),
        ("${base64_decode('!!!')}", "not valid base64"),
        ("${base64_decode('/w==')}", "not UTF-8"),
        ("${base64_encode(1)}", "needs a string"),
        ("${hash('a', 'crc32')}", "algorithm must be one of"),
        ("${random(3, 1)}", "greater than max"),
        ("${random('a', 2)}", "random() needs numbers"),
        ("${length(5)}", "length() needs a string, list or object"),
        ("${length(null)}", "length() needs"),
        ("${lower(1)}", "lower() needs a string"),
        ("${upper(null)}", "upper() needs a string"),
        ("${default(1 + [], 2)}", "cannot add number and list"),  # only missing references are tolerated
    ],
)
def test_function_errors(src, fragment):
    e = err(src)
    assert fragment in e.message
    assert e.expression == src
    assert src[e.offset:].startswith(src[2:].split("(")[0]) or src.startswith("${default")


def test_json_parse_size_limit():
    big = '"' + "x" * 1_000_001 + '"'
    e = err_with("${json_parse(s)}", s=big)
    assert "larger than" in e.message


# --- errors and their offsets ------------------------------------------------------------

@pytest.mark.parametrize(
    "src, fragment, at",
    [
        ("${ 1 + }", "unexpected end of expression", "}"),
        ("${}", "empty expression", "}"),
        ("${ foo(1) }", "unknown function 'foo'", "foo"),
        ("${ (1 + 2 }", "unclosed '('", "("),
        ("${ [1, 2 }", "unclosed '['", "["),
        ("${ now(1) }", "now() takes 0 arguments (1 given)", "now"),
        ("${ random(1) }", "random() takes 0 or 2 arguments (1 given)", "random"),
        ("${ hash() }", "hash() takes 1 or 2 arguments (0 given)", "hash"),
        ("${ lower('a', 'b') }", "lower() takes 1 argument (2 given)", "lower"),
        ("${ 1 2 }", "unexpected number 2", "2 }"),
        ("${ a = 1 }", "use '=='", "= 1"),
        ("${ a & b }", "use '&&'", "& b"),
        ("${ a # b }", "unexpected character '#'", "#"),
        ("${ 'abc }", "unterminated string", "'abc"),
        ("x ${ inputs.a", "unterminated '${'", "${ inputs"),
        ("${ a. }", "expected a field name", "}"),
        ("${ a.1 }", "expected a field name", "1"),
        ("${ a[1 }", "unclosed '['", "[1"),
        ("${ a[1 2] }", "expected ']' but found number 2", "2]"),
        ("${ f(1 }", "unknown function 'f'", "f("),
        ("${ lower('a' 'b') }", "expected ')' but found string literal", "'b'"),
        ("${ a ? b }", "expected ':'", "}"),
        ("${ {a 1} }", "expected ':' after object key", "1}"),
        ("${ {1: 2} }", "expected an object key", "1:"),
        ("${ {a: 1, a: 2} }", "duplicate key 'a'", "a: 2"),
        ("${ a.b(1) }", "only named functions can be called", "(1)"),
        ("${ 1 + not 2 }", "'not' needs parentheses", "not 2"),
        ("${ and }", "unexpected 'and'", "and"),
        ("${ 'a' 'b' }", "unexpected string literal", "'b'"),
        (r"${ '\q' }", "unknown escape", "\\q"),
        (r"${ '\u12' }", "invalid unicode escape", "\\u12"),
        (r"${ '\ud83d' }", "lone surrogate", "'"),
        ("ok ${1} then ${ ) }", "unexpected ')'", ") }"),
    ],
)
def test_syntax_errors_point_at_the_problem(src, fragment, at):
    with pytest.raises(ExpressionError) as info:
        parse_template(src)
    e = info.value
    assert fragment in e.message, e.message
    assert e.expression == src
    assert src[e.offset:].startswith(at), (e.offset, src[e.offset:])
    assert f"offset {e.offset}" in str(e) and fragment in str(e)


@pytest.mark.parametrize(
    "src, fragment, at, missing",
    [
        ("${ foo }", "unknown name 'foo'", "foo", True),
        ("${ inputs.bar }", "no field 'bar' in inputs", "bar", True),
        ("${ inputs.nested.a.zz }", "no field 'zz' in inputs.nested.a", "zz", True),
        ("${ inputs['bar'] }", "no field 'bar' in inputs", "'bar'", True),
        ("${ inputs.items[5] }", "index 5 out of range for list of length 3", "5", True),
        ("${ inputs.items[-1] }", "index -1 out of range", "-1", True),
        ("${ inputs.name[9] }", "index 9 out of range for string of length 3", "9", True),
        ("${ inputs.items.first }", "no field 'first' on list", "first", True),
        ("${ tasks.skipped.output.y }", "cannot read 'y' of null", "y", True),
        ("${ inputs.nothing[0] }", "cannot read '0' of null", "0", True),
        ("${ inputs.n.x }", "cannot read 'x' of number", "x", True),
        ("${ tasks.nope.output }", "no field 'nope' in tasks", "nope", True),
        ("${ inputs.items['a'] }", "no field 'a' on list", "'a'", True),
        ("${ inputs.items[true] }", "index must be a whole number", "true", False),
        ("${ inputs.items[1.5] }", "index must be a whole number", "1.5", False),
        ("${ inputs.o[null] }", "object keys are strings", "null", False),
        ("${ 1 + [] }", "cannot add number and list", "+", False),
        ("${ [1] + [1] }", "cannot add list and list", "+", False),
        ("${ {} + 1 }", "cannot add object and number", "+", False),
        ("${ true + 1 }", "cannot add boolean and number", "+", False),
        ("${ null + 1 }", "cannot add null and number", "+", False),
        ("${ 'a' - 1 }", "'-' needs numbers, not string and number", "-", False),
        ("${ true * 2 }", "'*' needs numbers, not boolean and number", "*", False),
        ("${ 1 / 0 }", "division by zero", "/", False),
        ("${ 1 % 0 }", "division by zero", "%", False),
        ("${ 1.5 / 0.0 }", "division by zero", "/", False),
        ("${ -'a' }", "unary '-' needs a number, not string", "-", False),
        ("${ +null }", "unary '+' needs a number", "+", False),
        ("${ 1 < 'a' }", "cannot compare number and string", "<", False),
        ("${ [1] >= [1] }", "cannot compare list and list", ">=", False),
        ("${ null < 1 }", "cannot compare null and number", "<", False),
        ("${ 1 in 2 }", "'in' needs a list, string or object", "in", False),
        ("${ 1 in 'abc' }", "needs a string on the left", "in", False),
        ("${ 1 in inputs.o }", "needs a string key", "in", False),
        ("${ 1e308 * 10 }", "number too large", "*", False),
        ("${ format(1, 2) }", "format() needs a string", "format", False),
        ("a=${1} b=${ missing }", "unknown name 'missing'", "missing", True),
    ],
)
def test_runtime_errors_point_at_the_problem(src, fragment, at, missing):
    e = err(src)
    assert fragment in e.message, e.message
    assert e.expression == src
    assert src[e.offset:].startswith(at), (e.offset, src[e.offset:])
    assert isinstance(e, MissingReferenceError) is missing


def test_missing_reference_in_nested_render_names_the_string():
    with pytest.raises(ExpressionError) as info:
        render({"a": ["ok", "x=${inputs.nope}"]}, scope())
    assert info.value.expression == "x=${inputs.nope}"
    assert info.value.offset == 11


def test_expression_error_text():
    e = ExpressionError("unknown name 'x'", "${ x }", 3)
    assert str(e) == "unknown name 'x' (at offset 3 in '${ x }')"
    assert (e.message, e.expression, e.offset) == ("unknown name 'x'", "${ x }", 3)
    assert str(ExpressionError("bare")) == "bare"


def test_expression_error_pickles():
    import pickle

    e = err("${ foo }")
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.message, back.expression, back.offset) == (
        MissingReferenceError, e.message, e.expression, e.offset)


# --- static helpers -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, expected",
    [
        ("${tasks.a.output}", {"a"}),
        ("x ${tasks.a.output.b} y ${tasks.b.status}", {"a", "b"}),
        ("${tasks['a-b'].output}", {"a-b"}),
        ('${tasks["c d"].output}', {"c d"}),
        ("${ default(tasks.x.output, tasks.y.output) }", {"x", "y"}),
        ("${ [tasks.l1.output, {k: tasks.o1.status}] }", {"l1", "o1"}),
        ("${ inputs.tasks.a }", set()),  # not the tasks root
        ("${ tasks[inputs.which] }", set()),  # dynamic: cannot be known
        ("${ tasks }", set()),
        ("tasks.a.output", set()),  # not inside ${}
        ("$${tasks.a}", set()),  # escaped
        ({"k": ["${tasks.a.output}", {"deep": ["${tasks['b'].x}"]}], "${tasks.key.x}": "v"}, {"a", "b"}),
        ([["${tasks.one.output}"], "${ 1 + }", ("${tasks.two.output}",)], {"one", "two"}),
        ("${ tasks.good.output } ${ 1 + }", {"good"}),  # syntax errors are not raised
        ("${ tasks.broken.output + ", {"broken"}),
        ("${ tasks['x-y'].output + (", {"x-y"}),
        (5, set()),
        (None, set()),
    ],
)
def test_task_references(value, expected):
    assert task_references(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("${inputs.a + tasks.b.output + x}", {"inputs", "tasks", "x"}),
        ("${ default(foo, bar) }", {"foo", "bar"}),
        ("${ now() }", set()),
        ("${ {a: b}.a }", {"b"}),
        ("${ x.y.z } and ${ [w] }", {"x", "w"}),
        (["${loop.item}", {"k": "${error.message}"}], {"loop", "error"}),
        ("${ true && null }", set()),
        ("no expressions", set()),
    ],
)
def test_root_names(value, expected):
    assert root_names(value) == expected


def test_is_template():
    assert is_template("a ${b}")
    assert not is_template("plain")
    assert not is_template(5)
    assert not is_template(["${x}"])


def test_parse_template_is_cached_and_structured():
    t1 = parse_template("a ${x} b")
    assert parse_template("a ${x} b") is t1
    assert not t1.is_single and len(t1.segments) == 1
    assert parse_template("${x}").is_single
    assert [s.start for s in parse_template("${a} ${b}").segments] == [0, 5]
    with pytest.raises(ExpressionError):
        parse_template(5)  # type: ignore[arg-type]


# --- limits -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "src, fragment",
    [
        ("${" + "(" * 5000 + "1" + ")" * 5000 + "}", "expression longer than 10000 characters"),
        ("${" + "(" * 3000 + "1" + ")" * 3000 + "}", "nested too deeply"),
        ("${" + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
        ("${" + "{a:" * 2000 + "1" + "}" * 2000 + "}", "nested too deeply"),
        ("${" + "-" * 3000 + "x}", "nested too deeply"),
        ("${" + "!" * 3000 + "1}", "nested too deeply"),
        ("${" + "not " * 500 + "1}", "nested too deeply"),
        ("${" + "1 ? " * 1000 + "1" + " : 1" * 1000 + "}", "nested too deeply"),
        ("${" + "f(" * 3000 + "}", "unknown function"),
        ("${" + "length(" * 1000 + "1" + ")" * 1000 + "}", "nested too deeply"),
        ("${" + "1" * 101 + "}", "longer than 100 digits"),
        ("${" + "1e999" + "}", "number literal too large"),
    ],
)
def test_limits_raise_expression_error(src, fragment):
    # How fast and in how much memory: bench/hostile_input.py (figures, not a timed test).
    with pytest.raises(ExpressionError) as info:
        parse_template(src)
    assert fragment in info.value.message


def test_nesting_up_to_the_limit_works():
    assert ev("${" + "(" * 50 + "1" + ")" * 50 + "}") == 1
    assert ev("${" + "[" * 50 + "]" * 50 + "}") is not None


def test_long_flat_chains_are_not_nesting():
    assert ev("${" + " + ".join(["1"] * 2000) + "}") == 2000
    assert ev("${" + " && ".join(["true"] * 1000) + "}") is True
    assert ev("${x" + ".a" * 2000 + "}", x=_deep_dict(2000)) == "end"
    assert ev("${" + "'x' + " * 1000 + "1}") == "x" * 1000 + "1"


def _deep_dict(depth: int):
    value: object = "end"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_deep_data_does_not_overflow():
    deep = _deep_dict(5000)
    assert ev("${x == x}", x=deep) is True
    text = ev("v=${x}", x=deep)
    assert text.startswith('v={"a":{"a":') and text.endswith("}" * 5000)
    assert ev("${json_stringify(x)}", x=deep).count("{") == 5000
    with pytest.raises(ExpressionError, match="nested too deeply"):
        ev("${json_parse(s)}", s="[" * 100000 + "]" * 100000)
    assert ev("${json_parse(s).length}", s="[" * 100 + "]" * 100) == 1


def test_result_size_limits():
    big = "x" * 600_000
    with pytest.raises(ExpressionError) as info:
        ev("${s + s}", s=big)
    assert info.value.message == "result too large"
    with pytest.raises(ExpressionError, match="result too large"):
        ev("${s} ${s}", s=big)
    with pytest.raises(ExpressionError, match="result too large"):
        ev("${base64_encode(s)}", s="x" * 800_000)
    with pytest.raises(ExpressionError, match="result too large"):
        to_display(["x" * 600_000, "y" * 600_000])
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(ExpressionError):
        ev("v=${c}", c=cyclic)
    with pytest.raises(ExpressionError):
        ev("${c == c}", c=cyclic)


def test_source_limit_is_per_expression_not_per_string():
    text = "x" * 20_000 + "${1 + 1}" + "y" * 20_000
    assert ev(text) == "x" * 20_000 + "2" + "y" * 20_000


def test_big_numbers():
    assert ev("${" + "9" * 100 + " + 1}") == 10**100
    assert ev("${" + "9" * 100 + " / 3}") == int("3" * 100)
    with pytest.raises(ExpressionError, match="number too large"):
        ev("${" + " * ".join(["9" * 100] * 5) + "}")


# --- robustness ------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("${}()[]'\"\\.,:?!+-*/%<>=&| \n\t0123456789abcdeflnorstu_")
    + ["${", "tasks.", "inputs.", "true", "null", "not ", " in ", "&&", "||", "==", "default(", "length(",
       "json_parse(", "format(", "'0.00'", "\\u", "e5", "1.5"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_fuzz_only_expression_errors(text):
    try:
        parse_template(text)
    except ExpressionError as e:
        assert 0 <= e.offset <= len(text)
        assert e.expression == text
    try:
        evaluate(text, scope(), EvalContext(now=NOW, seed=1))
    except ExpressionError:
        pass
    task_references(text)
    root_names(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_arbitrary_text(text):
    for candidate in (text, "${" + text + "}", "a ${" + text):
        try:
            evaluate(candidate, scope(), EvalContext(now=NOW))
        except ExpressionError:
            pass
        task_references(candidate)


def test_a_context_draws_the_seed_s_sequence_whenever_it_first_draws_and_fresh_restarts_it() -> None:
    import random as stdlib_random

    ctx = EvalContext(now=NOW, seed=99)
    expected = stdlib_random.Random(99)
    assert [ctx.rng.random() for _ in range(3)] == [expected.random() for _ in range(3)]
    again = ctx.fresh()
    assert again.rng.random() == stdlib_random.Random(99).random() and again == ctx
    try:
        ctx.no_such_attribute  # noqa: B018 - only rng is made on demand
    except AttributeError:
        pass
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")
