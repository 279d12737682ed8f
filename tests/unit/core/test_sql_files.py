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


# ---------------------------------------------------------------------------------- quoting values
def test_sql_string_filter_quotes_and_round_trips(sql_dir):
    from lakehouse.core.sql_files import declared_options

    (sql_dir / "jobs" / "t.sql").write_text(
        "CREATE TABLE t (x INT) WITH ('password' = {{ pw | sql_string }}, 'port' = {{ port | sql_int | sql_string }});"
    )
    for value in ("p'ss-w0rd", "x', 'scan.startup.mode' = 'earliest-offset", "'';--", "a;b /* c", "", "ends'"):
        [statement] = load_statements("jobs/t.sql", {"pw": value, "port": "3306"})
        assert declared_options(statement) == {"password": value, "port": "3306"}, value


@pytest.mark.parametrize("value", [None, "a\x00b", object()])
def test_sql_string_refuses_what_is_no_text(sql_dir, value):
    (sql_dir / "jobs" / "t.sql").write_text("SELECT {{ v | sql_string }};")
    with pytest.raises(SqlFileError, match=r"cannot render jobs/t\.sql: .*string literal"):
        render("jobs/t.sql", {"v": value})


@pytest.mark.parametrize("value", ["3306'", "1 OR 1", "1.5", True, None, "", "0x10"])
def test_sql_int_refuses_what_is_no_integer(sql_dir, value):
    (sql_dir / "jobs" / "t.sql").write_text("SELECT {{ v | sql_int }};")
    with pytest.raises(SqlFileError, match=r"cannot render jobs/t\.sql: .*not an integer"):
        render("jobs/t.sql", {"v": value})
    assert render("jobs/t.sql", {"v": " 42 "}) == "SELECT 42;"


@pytest.mark.parametrize("value", ["orders`; DROP", "a.b", "a b", "", "1=1", None])
def test_sql_identifier_refuses_what_is_no_identifier(sql_dir, value):
    (sql_dir / "jobs" / "t.sql").write_text("SELECT {{ v | sql_identifier }};")
    with pytest.raises(SqlFileError, match=r"cannot render jobs/t\.sql: .*not a plain identifier"):
        render("jobs/t.sql", {"v": value})
    assert render("jobs/t.sql", {"v": "delivery_2"}) == "SELECT delivery_2;"


def _literals_with_placeholders(template: str) -> list[str]:
    """Single-quoted SQL literals of a template (outside Jinja tags) that contain a {{ ... }}."""
    import re

    text = re.sub(r"\{#.*?#\}", "", template, flags=re.S)
    found, i = [], 0
    while i < len(text):
        if text.startswith(("{{", "{%"), i):  # a Jinja tag: its own quotes are Jinja's, not SQL's
            i = text.index("}}" if text[i + 1] == "{" else "%}", i) + 2
        elif text[i] == "'":
            j = i + 1
            while j < len(text) and not (text[j] == "'" and text[j + 1 : j + 2] != "'"):
                j += 2 if text[j] == "'" else 1
            if "{{" in text[i : j + 1]:
                found.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("--", i):
            i = text.find("\n", i) % (len(text) + 1) or len(text)
        else:
            i += 1
    return found


def test_flink_templates_quote_every_value_with_the_filter():
    """No `'{{ value }}'`: a value goes into a Flink SQL literal through `sql_string` only.
    (sql/starrocks renders for StarRocks, whose values lakehouse.serving validates.)"""
    assert _literals_with_placeholders("a = '{{ x }}' AND b = {{ y | sql_string }} {% if m == 'b' %}") == ["'{{ x }}'"]
    offenders = {
        str(path.relative_to(SQL_DIR)): found
        for path in sorted(SQL_DIR.rglob("*.sql"))
        if "starrocks" not in path.parts and (found := _literals_with_placeholders(path.read_text()))
    }
    assert not offenders, f"values rendered into SQL literals without | sql_string: {offenders}"


class _Paimon:
    warehouse_uri = "s3://lake/warehouse"
    flink_catalog_options = {"s3.access-key": "minio", "s3.secret-key": "it's-secret"}


class _Cdc:
    def __init__(self, password: str, **overrides):
        self.params = {
            "host": "mysql",
            "port": 3306,
            "database": "delivery",
            "user": "flink_cdc",
            "password": password,
            "extra": {"server_id_base": 5400},
            **overrides,
        }

    def connection_params(self):
        return self.params


CDC_OPTIONS = {
    "connector",
    "hostname",
    "port",
    "username",
    "password",
    "database-name",
    "table-name",
    "server-id",
    "server-time-zone",
    "scan.startup.mode",
    "scan.incremental.close-idle-reader.enabled",
    "heartbeat.interval",
    "jdbc.properties.useSSL",
}


@pytest.mark.parametrize("password", ["p'ss-w0rd", "x', 'scan.startup.mode' = 'earliest-offset", "a'); DROP --"])
def test_the_cdc_job_carries_any_password_as_one_option(password):
    from lakehouse.core.flink_sql import catalog_statements, sql_context
    from lakehouse.core.sql_files import declared_options

    context = sql_context(paimon=_Paimon(), cdc=_Cdc(password))
    statements = load_statements("ods/ods_delivery_cdc.sql", context)
    tables = [s for s in statements if s.startswith("CREATE TEMPORARY TABLE")]
    assert len(tables) == 6 and len(statements) == 7, statements
    for statement in tables:
        options = declared_options(statement)
        assert set(options) == CDC_OPTIONS
        assert options["password"] == password
        assert options["scan.startup.mode"] == "initial"  # the crafted value added nothing
    [catalog] = catalog_statements(_Paimon())
    assert declared_options(") WITH" + catalog.split("WITH", 1)[1])["s3.secret-key"] == "it's-secret"


def test_rendering_registers_the_secrets_not_the_access_key():
    from lakehouse.core import secrets
    from lakehouse.core.flink_sql import sql_context

    secrets.forget_secrets()

    class Paimon(_Paimon):
        flink_catalog_options = {"s3.access-key": "lakehouse", "fs.s3.accessKeySecret": "sk-0001", "s3.token": "tk-02"}

    try:
        sql_context(paimon=Paimon(), cdc=_Cdc("cdc-pw-03"))
        masked = secrets.mask_secrets("lakehouse.ods sk-0001 tk-02 cdc-pw-03")
        assert masked == "lakehouse.ods **** **** ****"
    finally:
        secrets.forget_secrets()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"port": "3306' , 'x' = 'y"}, "port"),
        ({"extra": {"server_id_base": "54x"}}, "server_id_base"),
        ({"database": "delivery|mysql"}, "database"),
    ],
)
def test_the_cdc_job_refuses_malformed_connection_values(override, message):
    from lakehouse.core.flink_sql import sql_context

    with pytest.raises(SqlFileError, match=message):
        load_statements("ods/ods_delivery_cdc.sql", sql_context(paimon=_Paimon(), cdc=_Cdc("pw", **override)))
