"""SQLite-style placeholders in psycopg's style: only in code, never in literals, comments or casts."""

from __future__ import annotations

import pytest

from infra.tasks.pg_sql import convert


def test_named_placeholders_become_psycopg_named_placeholders():
    done = convert("SELECT * FROM t WHERE a = :a AND b = :b_2 OR a = :a", positional=False)
    assert done.query == "SELECT * FROM t WHERE a = %(a)s AND b = %(b_2)s OR a = %(a)s"
    assert done.names == ("a", "b_2", "a") and done.positional == 0
    assert done.numbered == "SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1"
    assert done.values({"b_2": 2, "a": 1, "unused": 3}) == [1, 2]


def test_question_marks_are_placeholders_only_for_a_list():
    assert convert("INSERT INTO t VALUES (?, ?)", positional=True).query == "INSERT INTO t VALUES (%s, %s)"
    assert convert("INSERT INTO t VALUES (?, ?)", positional=True).positional == 2
    assert convert("INSERT INTO t VALUES (?, ?)", positional=True).numbered == "INSERT INTO t VALUES ($1, $2)"
    # with an object of parameters, ? is PostgreSQL's jsonb key operator
    assert convert("SELECT doc ? 'k' FROM t WHERE id = :id", positional=False).query == \
        "SELECT doc ? 'k' FROM t WHERE id = %(id)s"


def test_percent_signs_are_escaped_everywhere():
    done = convert("SELECT 7 % 3, 'a%b' LIKE :p, \"50%\" FROM t -- 10%\n", positional=False)
    assert done.query == "SELECT 7 %% 3, 'a%%b' LIKE %(p)s, \"50%%\" FROM t -- 10%%\n"
    assert done.numbered == "SELECT 7 % 3, 'a%b' LIKE $1, \"50%\" FROM t -- 10%\n"


@pytest.mark.parametrize("sql", [
    "SELECT ':not_a_name'",
    "SELECT 'it''s :x'",
    "SELECT E'\\' :x'",
    'SELECT 1 AS ":x"',
    "SELECT 1 -- :x",
    "SELECT 1 /* :x /* nested :y */ :z */",
    "SELECT $$ :x $$",
    "SELECT $body$ :x $ $body$",
    "SELECT '1'::int, now()::date",
])
def test_literals_comments_and_casts_hold_no_placeholders(sql):
    done = convert(sql, positional=True)
    assert done.names == () and done.positional == 0
    assert done.query == sql and done.numbered == sql


def test_a_placeholder_after_a_literal_is_still_found():
    done = convert("SELECT 'x' || :a, $$y$$ || :b, E'z\\'' || :c, '1'::text || :d", positional=False)
    assert done.names == ("a", "b", "c", "d")


def test_an_identifier_ending_in_e_is_not_an_escape_string():
    # "type'..." is not E'...': the quote opens an ordinary literal in which a backslash is plain
    done = convert("SELECT some_type'\\' , :a", positional=False)
    assert done.names == ("a",)
