"""sql_files: statement splitting, strict rendering and the sql/ sandbox."""

from __future__ import annotations

import pytest

from lakehouse.core import sql_files
from lakehouse.core.paths import SQL_DIR
from lakehouse.core.sql_files import SqlFileError, load_statements, render, split_statements, sql_path


# ---------------------------------------------------------------------------------- split_statements
def test_plain_statements_and_trailing_statement_without_semicolon():
    assert split_statements("CREATE TABLE a (x INT);\n\nSELECT * FROM a;  ;\n SELECT 2 ") == [
        "CREATE TABLE a (x INT)",
        "SELECT * FROM a",
        "SELECT 2",
    ]


def test_empty_script():
    assert split_statements("  ;\n-- only a comment\n/* and another */ ;") == []


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT 'a;b' FROM t; SELECT 2", ["SELECT 'a;b' FROM t", "SELECT 2"]),
        ("SELECT `we;ird` FROM t;SELECT 2", ["SELECT `we;ird` FROM t", "SELECT 2"]),
        ('SELECT "x;y"; SELECT 2', ['SELECT "x;y"', "SELECT 2"]),
        ("SELECT 'it''s; fine' AS s; SELECT 3", ["SELECT 'it''s; fine' AS s", "SELECT 3"]),
        ("SELECT ''';' AS q; SELECT 4", ["SELECT ''';' AS q", "SELECT 4"]),
        ("SELECT '-- not a comment; /* nor this */' AS s", ["SELECT '-- not a comment; /* nor this */' AS s"]),
        ("SELECT 'a\"b;' AS s; SELECT 5", ["SELECT 'a\"b;' AS s", "SELECT 5"]),
    ],
)
def test_quotes_protect_semicolons(sql, expected):
    assert split_statements(sql) == expected


def test_line_comments_are_dropped():
    sql = "-- header; with a semicolon\nSELECT 1; -- trailing; comment\nSELECT 2 -- no semicolon after this\n;"
    assert split_statements(sql) == ["SELECT 1", "SELECT 2"]


def test_block_comments_are_dropped():
    sql = "/* header;\n   spanning; lines */\nSELECT 1 /* inline; */ + 1;\nSELECT 2;"
    assert split_statements(sql) == ["SELECT 1   + 1", "SELECT 2"]


def test_block_comment_separates_tokens():
    # a comment between two tokens must not glue them together
    assert split_statements("SELECT 1/* c */FROM t") == ["SELECT 1 FROM t"]


def test_line_comment_at_end_of_file_without_newline():
    assert split_statements("SELECT 1; -- bye") == ["SELECT 1"]


def test_statement_set_is_one_statement():
    sql = """
CREATE TEMPORARY TABLE src (x INT) WITH ('connector' = 'datagen');
EXECUTE STATEMENT SET
BEGIN
  -- first sink; with a comment
  INSERT INTO a SELECT x FROM src WHERE x <> ';';
  INSERT INTO b SELECT x FROM src;
END;
SELECT 3;
"""
    assert split_statements(sql) == [
        "CREATE TEMPORARY TABLE src (x INT) WITH ('connector' = 'datagen')",
        "EXECUTE STATEMENT SET\nBEGIN\n  \n  INSERT INTO a SELECT x FROM src WHERE x <> ';';\n"
        "  INSERT INTO b SELECT x FROM src;\nEND",
        "SELECT 3",
    ]


def test_statement_set_case_insensitive_and_begin_statement_set_form():
    assert split_statements("execute statement set begin insert into a select 1; end;") == [
        "execute statement set begin insert into a select 1; end"
    ]
    assert split_statements("BEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND;") == [
        "BEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND"
    ]


def test_end_inside_a_statement_set_string_does_not_close_it():
    sql = "EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 'END'; INSERT INTO b SELECT 1; END; SELECT 2;"
    assert split_statements(sql) == [
        "EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 'END'; INSERT INTO b SELECT 1; END",
        "SELECT 2",
    ]


def test_statement_set_without_end():
    with pytest.raises(SqlFileError, match="EXECUTE STATEMENT SET without a closing END;"):
        split_statements("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1; INSERT INTO b SELECT 2;")


@pytest.mark.parametrize(
    "sql, quote", [("SELECT 'abc; SELECT 2;", "'"), ("SELECT `abc FROM t;", "`"), ("SELECT 'it''s;", "'")]
)
def test_unterminated_quote(sql, quote):
    with pytest.raises(SqlFileError, match=f"unterminated {quote} quote"):
        split_statements(sql)


def test_unterminated_block_comment():
    with pytest.raises(SqlFileError, match=r"unterminated /\* comment"):
        split_statements("SELECT 1; /* never closed; SELECT 2;")


# ---------------------------------------------------------------------------------- files
@pytest.fixture
def sql_dir(tmp_path, monkeypatch):
    """A private sql/ directory for the file functions."""
    root = tmp_path / "sql"
    (root / "jobs").mkdir(parents=True)
    monkeypatch.setattr(sql_files, "SQL_DIR", root)
    return root


def test_render_substitutes_variables(sql_dir):
    (sql_dir / "jobs" / "a.sql").write_text("CREATE CATALOG c WITH ('warehouse' = '{{ paimon.warehouse_uri }}');\n")
    out = render("jobs/a.sql", {"paimon": {"warehouse_uri": "file:///data/wh"}})
    assert out == "CREATE CATALOG c WITH ('warehouse' = 'file:///data/wh');\n"


def test_render_undefined_variable(sql_dir):
    (sql_dir / "jobs" / "a.sql").write_text("SELECT '{{ mysql.host }}', {{ missing_var }};\n")
    with pytest.raises(SqlFileError) as exc:
        render("jobs/a.sql", {"mysql": {"host": "db"}})
    assert str(exc.value) == "cannot render jobs/a.sql: 'missing_var' is undefined"


def test_render_undefined_attribute(sql_dir):
    (sql_dir / "jobs" / "a.sql").write_text("SELECT '{{ mysql.cdc_password }}';\n")
    with pytest.raises(SqlFileError, match=r"cannot render jobs/a\.sql: .*cdc_password"):
        render("jobs/a.sql", {"mysql": {"host": "db"}})


def test_render_template_syntax_error(sql_dir):
    (sql_dir / "jobs" / "a.sql").write_text("SELECT {{ oops ;\n")
    with pytest.raises(SqlFileError, match=r"cannot render jobs/a\.sql"):
        render("jobs/a.sql", {})


def test_render_real_catalog_file_strictly():
    # the repository's own sql/catalog.sql: rendering without its variable is an error
    with pytest.raises(SqlFileError, match=r"cannot render catalog\.sql: 'paimon' is undefined"):
        render("catalog.sql", {})


def test_load_statements(sql_dir):
    (sql_dir / "jobs" / "job.sql").write_text(
        "-- job\nSET 'parallelism.default' = '{{ p }}';\nINSERT INTO a SELECT 1;\n"
    )
    assert load_statements("jobs/job.sql", {"p": 2}) == ["SET 'parallelism.default' = '2'", "INSERT INTO a SELECT 1"]
    (sql_dir / "jobs" / "empty.sql").write_text("-- nothing here\n")
    with pytest.raises(SqlFileError, match=r"jobs/empty\.sql contains no SQL statement"):
        load_statements("jobs/empty.sql", {})


def test_sql_path_resolves_inside(sql_dir):
    (sql_dir / "jobs" / "a.sql").write_text("SELECT 1;")
    assert sql_path("jobs/a.sql") == (sql_dir / "jobs" / "a.sql").resolve()
    assert sql_path("jobs/../jobs/a.sql") == (sql_dir / "jobs" / "a.sql").resolve()


@pytest.mark.parametrize("relative", ["../secret.sql", "jobs/../../secret.sql", "../sql_evil/x.sql", "ABSOLUTE"])
def test_sql_path_refuses_outside(sql_dir, relative):
    outside = sql_dir.parent
    (outside / "secret.sql").write_text("SELECT 1;")
    (outside / "sql_evil").mkdir()
    (outside / "sql_evil" / "x.sql").write_text("SELECT 1;")  # a sibling whose name starts with "sql"
    if relative == "ABSOLUTE":
        relative = str(outside / "secret.sql")
    with pytest.raises(SqlFileError, match="is outside"):
        sql_path(relative)
    with pytest.raises(SqlFileError, match="is outside"):
        render(relative, {})


def test_sql_path_refuses_symlink_escaping(sql_dir):
    target = sql_dir.parent / "elsewhere.sql"
    target.write_text("SELECT 1;")
    (sql_dir / "jobs" / "link.sql").symlink_to(target)
    with pytest.raises(SqlFileError, match="is outside"):
        sql_path("jobs/link.sql")


def test_sql_path_missing_file(sql_dir):
    with pytest.raises(SqlFileError, match=r"SQL file not found: .*jobs/nope\.sql"):
        sql_path("jobs/nope.sql")
    with pytest.raises(SqlFileError, match="SQL file not found"):
        sql_path("jobs")  # a directory is not a SQL file


def test_real_sql_dir_refuses_repo_files():
    assert SQL_DIR.name == "sql"
    with pytest.raises(SqlFileError, match="is outside"):
        sql_path("../plugins/lakehouse/core/paths.py")
    assert sql_path("catalog.sql") == (SQL_DIR / "catalog.sql").resolve()


def test_statement_set_at_end_of_file_needs_no_final_semicolon():
    from lakehouse.core.sql_files import split_statements as split

    assert split("SET 'a' = 'b'; EXECUTE STATEMENT SET BEGIN INSERT INTO t SELECT 1; END") == [
        "SET 'a' = 'b'",
        "EXECUTE STATEMENT SET BEGIN INSERT INTO t SELECT 1; END",
    ]
