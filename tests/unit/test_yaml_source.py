import textwrap

import pytest

from statemachine.yaml_source import MAX_VALUES, load_yaml


def load(text):
    return load_yaml(textwrap.dedent(text).lstrip("\n"), "f.yaml")


def messages(diags):
    return [str(d) for d in diags]


def test_yaml_12_scalars():
    data, _, diags = load("""
        a: on
        b: yes
        c: no
        d: off
        e: true
        f: False
        g: 2024-01-01
        h: 0755
        i: 0o17
        j: 0x1F
        k: 1_000
        l: 1.5e3
        m: .inf
        n: ~
        o:
        p: "true"
        q: 1:30
    """)
    assert diags == []
    assert data == {
        "a": "on", "b": "yes", "c": "no", "d": "off", "e": True, "f": False,
        "g": "2024-01-01", "h": 755, "i": 15, "j": 31, "k": "1_000", "l": 1500.0,
        "m": float("inf"), "n": None, "o": None, "p": "true", "q": "1:30",
    }


def test_keys_are_strings():
    data, _, _ = load("""
        200: ok
        true: yes
        null: x
    """)
    assert data == {"200": "ok", "true": "yes", "null": "x"}


def test_positions_of_keys_values_and_items():
    _, smap, _ = load("""
        workflow:
          tasks:
            - id: a
              depends_on: [x, "y"]
    """)
    assert (smap.key(("workflow",)).line, smap.key(("workflow",)).col) == (1, 1)
    assert (smap.value(("workflow", "tasks", 0)).line, smap.value(("workflow", "tasks", 0)).col) == (3, 7)
    assert (smap.key(("workflow", "tasks", 0, "id")).line, smap.key(("workflow", "tasks", 0, "id")).col) == (3, 7)
    assert (smap.value(("workflow", "tasks", 0, "id")).line, smap.value(("workflow", "tasks", 0, "id")).col) == (3, 11)
    item = smap.value(("workflow", "tasks", 0, "depends_on", 1))
    assert (item.line, item.col, item.style) == (4, 23, '"')


def test_find_falls_back_to_the_nearest_parent():
    _, smap, _ = load("""
        a:
          b: 1
    """)
    loc = smap.find(("a", "b", "missing", 3))
    assert (loc.line, loc.col) == (2, 6)
    assert (smap.find(("zzz",)).line, smap.find(("zzz",)).col) == (1, 1)


def test_duplicate_keys_are_refused():
    data, _, diags = load("""
        a: 1
        b:
          x: 1
          x: 2
        a: 3
    """)
    assert messages(diags) == [
        "f.yaml:4:3: duplicate key 'x' (first defined at 3:3)",
        "f.yaml:5:1: duplicate key 'a' (first defined at 1:1)",
    ]
    assert data["a"] == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: b: c\n", "f.yaml:1:5: invalid YAML: mapping values are not allowed here"),
        ("a: [1,\n", "f.yaml:2:1: invalid YAML: expected the node content, but found '<stream end>'"
                     " (while parsing a flow node)"),
        ("a:\n\t- x\n", "f.yaml:2:1: invalid YAML: found character '\\t' that cannot start any token"
                        " (while scanning for the next token)"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1: invalid YAML: expected a single document in the stream,"
                              " but found another document"),
        ('a: "open\n', "f.yaml:2:1: invalid YAML: found unexpected end of stream"
                       " (while scanning a quoted scalar)"),
    ],
)
def test_syntax_errors_point_at_the_problem(text, expected):
    data, _, diags = load_yaml(text, "f.yaml")
    assert data is None
    assert messages(diags) == [expected]


def test_control_characters_are_a_syntax_error():
    data, _, diags = load_yaml("a: 1\nb: \x07\n", "f.yaml")
    assert data is None
    assert len(diags) == 1 and diags[0].line == 2 and "invalid YAML" in diags[0].message


def test_empty_document():
    assert load_yaml("", "f.yaml")[::2] == (None, [])
    assert load_yaml("# only a comment\n", "f.yaml")[::2] == (None, [])


def test_tags():
    data, _, diags = load("""
        a: !!str 123
        b: !!int "7"
        c: !!float 1
        d: !Ref thing
        e: !!int abc
    """)
    assert data == {"a": "123", "b": 7, "c": 1.0, "d": "thing", "e": "abc"}
    assert messages(diags) == [
        "f.yaml:4:4: unsupported YAML tag '!Ref'",
        "f.yaml:5:4: invalid value 'abc' for tag !!int",
    ]


def test_anchors_aliases_and_merge_keys():
    data, smap, diags = load("""
        base: &base {retries: 3, delay: 1s}
        one:
          <<: *base
          delay: 5s
        list: [*base]
    """)
    assert diags == []
    assert data["one"] == {"delay": "5s", "retries": 3}
    assert data["list"] == [{"retries": 3, "delay": "1s"}]
    # A merged key is reported where it was written (in the anchor).
    assert smap.key(("one", "retries")).line == 1


def test_recursive_alias_is_an_error():
    _, _, diags = load("a: &a [1, *a]\n")
    assert messages(diags) == ["f.yaml:1:4: recursive alias: a value contains itself"]


def test_alias_bombs_are_stopped():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    data, _, diags = load_yaml("\n".join(lines) + "\n", "f.yaml")
    assert data is None
    assert len(diags) == 1 and f"more than {MAX_VALUES} values" in diags[0].message


# --- offsets inside scalars ------------------------------------------------------------

def _offset_position(text, path, needle):
    data, smap, diags = load(text)
    assert diags == []
    value = data
    for step in path:
        value = value[step]
    return smap.at_offset(path, value, value.index(needle))


def test_offset_in_plain_scalar():
    assert _offset_position("key: echo ${x}\n", ("key",), "${") == (1, 11)


def test_offset_in_quoted_scalars():
    assert _offset_position("key: 'ab ${x}'\n", ("key",), "${") == (1, 10)
    assert _offset_position('key: "ab ${x}"\n', ("key",), "${") == (1, 10)
    # An escape makes the source longer than the value; the column follows the source.
    assert _offset_position('key: "\\t ${x}"\n', ("key",), "${") == (1, 10)


def test_offset_in_literal_block():
    text = """
        outer:
          key: |
            line one
              indented ${x}
            last ${y}
    """
    assert _offset_position(text, ("outer", "key"), "${x}") == (4, 16)
    assert _offset_position(text, ("outer", "key"), "${y}") == (5, 10)


def test_offset_in_folded_block_and_multiline_plain():
    text = """
        key: >
          one
          two ${x}
        plain: a
          b ${y}
    """
    assert _offset_position(text, ("key",), "${x}") == (3, 7)
    assert _offset_position(text, ("plain",), "${y}") == (5, 5)


def test_offset_at_end_of_string():
    data, smap, _ = load("key: abc ${\n")
    assert smap.at_offset(("key",), data["key"], len(data["key"])) == (1, 12)


def test_absurd_nesting_is_an_error_not_a_crash():
    data, _, diags = load_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n", "f.yaml")
    assert data is None
    assert messages(diags) == ["f.yaml:1:1: invalid YAML: nested too deeply"]
