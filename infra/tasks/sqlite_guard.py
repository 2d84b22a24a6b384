"""What a database task's SQL may do on a SQLite connection: work in its own database, touch no other file.

SQLite lets one statement open any path the worker can write: ``ATTACH
'/path' AS x`` and ``VACUUM INTO '/path'`` create or read files anywhere,
``load_extension()`` runs native code, and some PRAGMAs move temporary files or
print where files are. The workflow author writes the SQL, so every statement
is put past :class:`SqliteGuard`, an authorizer (``set_authorizer``) that SQLite
asks about each action while compiling a statement:

- ``ATTACH`` / ``VACUUM INTO``: only ``''`` (a private temporary database, which
  a plain ``VACUUM`` uses too); a path, a URI, ``:memory:`` or a filename that is
  not a literal (a bound parameter, an expression) is refused. ``DETACH`` is refused.
- functions: ``load_extension`` and the file functions some builds add
  (``readfile``, ``writefile``, ``edit``), and ``fts3_tokenizer`` (which takes a
  pointer), are refused; extension loading is also switched off on the connection.
- PRAGMAs: only those listed below (schema questions, checks, and settings that
  live in the connection or in the database file itself).
- virtual tables: only the modules listed below (no ``fsdir``/``zipfile``/``csv``).
"""

from __future__ import annotations

import sqlite3

DATABASE_DENIED = "DatabaseAccessDenied"

# Asked with an argument that names a table, an index or a limit, never a setting.
_PRAGMA_QUESTIONS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "integrity_check", "quick_check", "collation_list", "function_list", "module_list",
    "pragma_list", "compile_options", "optimize",
})
# May be read and set: they live in the connection, or in the database file itself.
_PRAGMA_SETTINGS = frozenset({
    "foreign_keys", "defer_foreign_keys", "recursive_triggers", "case_sensitive_like", "user_version",
    "application_id", "busy_timeout", "cache_size", "cache_spill", "query_only", "automatic_index", "analysis_limit",
    "reverse_unordered_selects", "legacy_alter_table",
})
# May be read only: setting them changes files (journal_mode, temp_store) or the database's safety.
_PRAGMA_READ_ONLY = frozenset({
    "data_version", "page_count", "page_size", "freelist_count", "encoding", "schema_version", "journal_mode",
    "synchronous", "auto_vacuum", "max_page_count", "temp_store", "locking_mode", "mmap_size", "wal_autocheckpoint",
    "secure_delete",
})
_VTABLE_MODULES = frozenset({"fts3", "fts4", "fts5", "rtree", "rtree_i32", "geopoly"})
_FILE_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
_FILE_TABLES = frozenset({"fsdir", "zipfile", "sqlite_dbpage"})
_TABLE_ACTIONS = frozenset({sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})


def refusal(action: int, arg1: str | None, arg2: str | None) -> str | None:
    """Why SQLite's ``action`` (with its two arguments, as the authorizer gets them) is refused, or None."""
    if action == sqlite3.SQLITE_ATTACH:
        if arg1 == "":
            return None
        target = "a file name computed at run time" if arg1 is None else repr(arg1)
        return (f"ATTACH and VACUUM INTO would open {target}; a task's SQL works only in its connection's "
                "database")
    if action == sqlite3.SQLITE_DETACH:
        return "DETACH is not allowed in a task's SQL"
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _FILE_FUNCTIONS:
        return f"the SQL function {arg2}() is not allowed in a task's SQL"
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _PRAGMA_QUESTIONS or name in _PRAGMA_SETTINGS or (name in _PRAGMA_READ_ONLY and arg2 is None):
            return None
        return f"PRAGMA {name}{'' if arg2 is None else ' = ...'} is not allowed in a task's SQL"
    if action in (sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE) and (arg2 or "").lower() \
            not in _VTABLE_MODULES:
        return f"virtual tables of the module {arg2!r} are not allowed in a task's SQL"
    if action in _TABLE_ACTIONS and (arg1 or "").lower() in _FILE_TABLES:
        return f"the table {arg1} is not allowed in a task's SQL"
    return None


class SqliteGuard:
    """The authorizer of one connection; it keeps the first refusal so the task can say what was refused."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, database: str | None,
                 trigger: str | None) -> int:
        reason = refusal(action, arg1, arg2)
        if reason is None:
            return sqlite3.SQLITE_OK
        if self.refused is None:
            self.refused = reason
        return sqlite3.SQLITE_DENY

    def install(self, connection: sqlite3.Connection) -> None:
        connection.set_authorizer(self)
        if hasattr(connection, "enable_load_extension"):  # only in builds that can load extensions at all
            connection.enable_load_extension(False)
