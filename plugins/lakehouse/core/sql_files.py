"""Loading, rendering and splitting the Flink SQL files in `sql/`.

SQL files are Jinja templates whose variables come from typed settings (connections, the
registry), never from user input: values a user types (dates, table names) are validated
against the registry before they reach a template.

Every value goes into a Flink SQL string literal through one filter, never between quotes
written in the template (tests/unit/core/test_sql_files.py checks the templates for that):

    'password' = {{ mysql.cdc_password | sql_string }}     -> 'p''ss-w0rd'
    'port' = {{ mysql.port | sql_int | sql_string }}       -> '3306' (refused unless an integer)
    'database-name' = {{ db | sql_identifier | sql_string }}  (refused unless letters, digits, _)

so a quote in a password stays inside its literal and a crafted value cannot add an option.
`sql_string` follows Flink SQL (Calcite): a quote is doubled, a backslash is an ordinary
character. The StarRocks templates (sql/starrocks) quote differently and take only values
lakehouse.serving has validated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakehouse.core.errors import ConfigError
from lakehouse.core.paths import SQL_DIR


class SqlFileError(ConfigError):
    """A SQL file is missing, does not render, or cannot be split into statements."""


def sql_path(relative: str | Path) -> Path:
    """Resolve a path relative to `sql/`, refusing anything outside it."""
    path = (SQL_DIR / relative).resolve()
    if SQL_DIR.resolve() not in path.parents:
        raise SqlFileError(f"{relative!s} is outside {SQL_DIR}")
    if not path.is_file():
        raise SqlFileError(f"SQL file not found: {path}")
    return path


def _undefined(value: Any) -> bool:
    """A Jinja undefined: str() of it raises under StrictUndefined ('x' is undefined), or is a
    placeholder when the registry renders a file for its lineage."""
    from jinja2 import Undefined

    return isinstance(value, Undefined)


def sql_string(value: Any) -> str:
    """A Flink SQL string literal holding `value`, quotes included: a quote inside is doubled."""
    if _undefined(value):
        return "'" + str(value).replace("'", "''") + "'"
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise SqlFileError(f"a {type(value).__name__} cannot be written as a SQL string literal")
    text = str(value)
    if "\x00" in text:
        raise SqlFileError("a NUL character cannot be written into a SQL string literal")
    return "'" + text.replace("'", "''") + "'"


_INTEGER = re.compile(r"-?[0-9]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sql_int(value: Any) -> int:
    """The value as an integer: an int, or a string of decimal digits; anything else is refused."""
    if _undefined(value):
        str(value)  # raises unless a placeholder
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise SqlFileError(f"{value!r} is not an integer")


def sql_identifier(value: Any) -> str:
    """The value unchanged if it is a plain identifier (letters, digits, _; not starting with a digit)."""
    if _undefined(value):
        str(value)
        return value
    if isinstance(value, str) and _IDENTIFIER.fullmatch(value):
        return value
    raise SqlFileError(f"{value!r} is not a plain identifier (letters, digits and _, not starting with a digit)")


# The filters every environment that renders sql/ installs (render, and the registry's lineage check).
SQL_FILTERS = {"sql_string": sql_string, "sql_int": sql_int, "sql_identifier": sql_identifier}


def render(relative: str | Path, context: Mapping[str, Any]) -> str:
    """Render a SQL template; an undefined variable is an error, not an empty string."""
    import jinja2

    path = sql_path(relative)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SQL_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(SQL_FILTERS)
    try:
        return env.get_template(path.relative_to(SQL_DIR.resolve()).as_posix()).render(**context)
    except (jinja2.TemplateError, SqlFileError) as exc:
        raise SqlFileError(f"cannot render {path.relative_to(SQL_DIR.resolve())}: {exc}") from exc


_STATEMENT_SET_START = re.compile(r"^\s*(EXECUTE\s+STATEMENT\s+SET\s+BEGIN|BEGIN\s+STATEMENT\s+SET)\b", re.I)


def split_statements(sql: str) -> list[str]:
    """Split a script into statements on `;`, honouring quotes, comments and statement sets.

    `EXECUTE STATEMENT SET BEGIN ... END;` stays one statement, as the SQL Gateway expects.
    Comments are dropped; the statements come back without their trailing `;`.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    in_set = False
    while i < n:
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                if i + 1 < n and sql[i + 1] == quote:  # '' escapes a quote
                    buf.append(sql[i + 1])
                    i += 1
                else:
                    quote = None
        elif ch in ("'", "`", '"'):
            quote = ch
            buf.append(ch)
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise SqlFileError("unterminated /* comment")
            buf.append(" ")  # a comment separates tokens: `1/* c */FROM` is `1 FROM`
            i = j + 2
            continue
        elif ch == ";":
            text = "".join(buf).strip()
            if not in_set and _STATEMENT_SET_START.match(text):
                in_set = True
            if in_set:
                if re.search(r"\bEND\s*$", text, re.I):
                    statements.append(text)
                    buf, in_set = [], False
                else:
                    buf.append(ch)
            else:
                if text:
                    statements.append(text)
                buf = []
        else:
            buf.append(ch)
        i += 1
    if quote:
        raise SqlFileError(f"unterminated {quote} quote")
    tail = "".join(buf).strip()
    if not in_set and _STATEMENT_SET_START.match(tail):
        in_set = True
    if in_set:
        if not re.search(r"\bEND$", tail, re.I):
            raise SqlFileError("EXECUTE STATEMENT SET without a closing END;")
        statements.append(tail)
        return statements
    if tail:
        statements.append(tail)
    return statements


def load_statements(relative: str | Path, context: Mapping[str, Any]) -> list[str]:
    """Render a SQL file and split it into statements."""
    statements = split_statements(render(relative, context))
    if not statements:
        raise SqlFileError(f"{relative} contains no SQL statement")
    return statements


_WITH_CLAUSE = re.compile(r"\)\s*WITH\s*\((?P<body>.*)\)\s*;?\s*$", re.S | re.I)
_OPTION = re.compile(r"'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'")


def declared_options(create_statement: str) -> dict[str, str]:
    """The `WITH (...)` options of a CREATE TABLE statement (the table's Paimon options)."""
    match = _WITH_CLAUSE.search(create_statement)
    if not match:
        return {}
    return {k.replace("''", "'"): v.replace("''", "'") for k, v in _OPTION.findall(match.group("body"))}
