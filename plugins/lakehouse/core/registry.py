"""Typed view of config/tables.yaml and config/streaming_jobs.yaml.

Each entry of the two files is read into a frozen pydantic model (`TableModel`, `JobModel`) that
refuses unknown keys, then into the `TableSpec` / `StreamingJobSpec` the code uses. Loading also
checks the files against each other and against sql/ (SQL files exist, jobs name only registered
tables, lookup tables are upstream), so a typo fails at DAG parse time with a message naming the
file, the entry and the key:

    tables.yaml: ods.ods_orders: freshnes_sla: unknown key; allowed: ddl, freshness_column, ...

`check_lineage` compares each job's declared upstream/lookup/downstream with the tables its SQL
file actually reads and writes (it renders the templates, so it is a unit test's job, not load's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from lakehouse.core.config import ConfigModel, format_errors, load_yaml
from lakehouse.core.errors import ConfigError
from lakehouse.core.paths import CONFIG_DIR, SQL_DIR
from lakehouse.core.sql_files import declared_options

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class RegistryError(ConfigError):
    """config/*.yaml is malformed or names something that does not exist."""


def parse_duration(text: str, where: str) -> float:
    """'10s', '2min', '36h', '500ms' -> seconds; anything else is a RegistryError."""
    m = re.match(r"^(\d+)\s*(ms|s|min|h)$", str(text).strip()) if isinstance(text, str) else None
    if not m:
        raise RegistryError(f"{where}: {text!r} is not a duration like '10s', '2min' or '36h'")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600}[m.group(2)]


# ------------------------------------------------------------------------------ the files' models
def _refuse(message: str, *, at_key: bool = False) -> PydanticCustomError:
    """A validation error whose message is ours: a `registry` message stands as it is after the entry
    (it names its key itself, or is about the entry's value: a duration), a `registry_at` message is
    prefixed with the key it was found at."""
    return PydanticCustomError("registry_at" if at_key else "registry", "{message}", {"message": message})


def _ident(value: str) -> str:
    if not _IDENT.match(value):
        raise _refuse(f"{value!r} is not a lower snake case name", at_key=True)
    return value


def _duration(value: Any) -> str:
    try:
        parse_duration(value, "")
    except RegistryError:
        raise _refuse(f"{value!r} is not a duration like '10s', '2min' or '36h'") from None
    return value.strip()


def _status(value: str) -> str:
    if not re.match(r"^[A-Z][A-Z0-9_]*$", value):
        raise _refuse(f"{value!r} is not a status in upper snake case", at_key=True)
    return value


def _unique(values: list) -> list:
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise _refuse(f"{twice} listed twice", at_key=True)
    return values


Ident = Annotated[str, AfterValidator(_ident)]
Duration = Annotated[str, BeforeValidator(_duration)]


class SourceModel(ConfigModel):
    """`source:` of an ODS table: the MySQL table it mirrors and the columns that date its rows."""

    table: Ident
    change_column: Ident  # dates a change: ODS has caught up with a day once it holds changes this late
    day_column: Ident | None = None  # whose day is the row's partition (partitioned tables only)


class TableModel(ConfigModel):
    """One entry of tables.yaml (its keys are documented at the top of the file)."""

    layer: str
    ddl: str
    primary_key: Annotated[list[Ident], AfterValidator(_unique)] = []
    partition: Ident | None = None
    source: SourceModel | None = None
    freshness_column: Ident | None = None
    freshness_sla: Duration | None = None
    model: str | None = None
    totals: Annotated[list[Ident], AfterValidator(_unique)] = []
    statuses: Annotated[list[Annotated[str, AfterValidator(_status)]], AfterValidator(_unique)] = []

    @field_validator("layer", mode="before")
    @classmethod
    def _layer(cls, value: Any) -> str:
        if value not in ("ods", "dwd", "dws"):
            raise _refuse("layer must be ods, dwd or dws")
        return value

    @model_validator(mode="after")
    def _source_dates_the_partition(self) -> TableModel:
        if self.source and self.partition and not self.source.day_column:
            raise _refuse(
                f"source.day_column is required: name the column of {self.source.table} whose day is "
                f"the row's {self.partition} partition"
            )
        if self.source and self.source.day_column and not self.partition:
            raise _refuse("source.day_column is only for partitioned tables: remove it or add partition")
        return self


class JobModel(ConfigModel):
    """One entry of streaming_jobs.yaml (its keys are documented at the top of the file)."""

    sql: str
    description: str = ""
    parallelism: int = 1
    checkpoint_interval: Duration = "10s"
    checkpoint_max_age: Duration = "2min"
    state_ttl: Duration | None = None
    vars: dict[str, Any] = {}
    on_restore_failure: str = "fail"
    upstream: Annotated[list[str], AfterValidator(_unique)] = []
    lookup: Annotated[list[str], AfterValidator(_unique)] = []
    downstream: Annotated[list[str], AfterValidator(_unique)] = []
    reset_replays: bool = True

    @field_validator("parallelism", mode="before")
    @classmethod
    def _parallelism(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _refuse(f"parallelism must be a whole number of at least 1, got {value!r}")
        return value

    @field_validator("on_restore_failure", mode="before")
    @classmethod
    def _restore_policy(cls, value: Any) -> str:
        if value not in ("fail", "reset"):
            raise _refuse(f"on_restore_failure must be fail or reset, got {value!r}")
        return value

    @field_validator("reset_replays", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _refuse(f"reset_replays must be true or false, got {value!r}")
        return value

    @model_validator(mode="after")
    def _lookup_is_upstream(self) -> JobModel:
        stray = set(self.lookup) - set(self.upstream)
        if stray:
            raise _refuse(f"lookup tables {sorted(stray)} are not in its upstream")
        return self


class TablesFile(ConfigModel):
    tables: dict[str, Any] | None = None


class JobsFile(ConfigModel):
    jobs: dict[str, Any] | None = None


def _validate(model: type[ConfigModel], data: Any, where: str):
    """`data` as `model`, or RegistryError with one line per problem, each naming its key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        generic = format_errors(exc, source=where, model=model).split("\n")  # one line per error, in order
        lines = []
        for error, line in zip(exc.errors(), generic, strict=True):
            key = ".".join(str(p) for p in error["loc"])
            if error["type"] == "registry":
                line = f"{where}: {error['msg']}"
            elif error["type"] == "registry_at":
                line = f"{where}: {key}: {error['msg']}"
            lines.append(line)
        raise RegistryError("\n".join(lines)) from None


# ------------------------------------------------------------------------------ what the code uses
@dataclass(frozen=True)
class TableSpec:
    name: str  # database.table
    layer: str
    ddl: str
    primary_key: tuple[str, ...]
    partition: str | None = None
    source: str | None = None  # the MySQL table an ODS table mirrors
    freshness_column: str | None = None
    freshness_sla_s: float | None = None
    model: str | None = None
    source_change_column: str | None = None  # the source column that dates a change
    source_day_column: str | None = None  # the source column whose day is the row's partition
    totals: tuple[str, ...] = ()  # columns summed in recomputation reports
    statuses: tuple[str, ...] = ()  # the valid values of its `status` column (ods_orders)

    @property
    def database(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def changelog_producer(self) -> str:
        """The table's `changelog-producer` as its DDL declares it (Paimon's default: none)."""
        return declared_options((SQL_DIR / self.ddl).read_text()).get("changelog-producer", "none").lower()

    @property
    def changelog_is_idempotent(self) -> bool:
        """Whether rows written again with the same values leave no trace in the changelog.

        `lookup` and `full-compaction` derive the changelog from the table's content, so a writer
        that replays what the table already holds emits nothing new. With `input` or `none` the
        changelog is whatever the writer wrote: a replay reaches the readers a second time."""
        return self.changelog_producer in ("lookup", "full-compaction")

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


@dataclass(frozen=True)
class StreamingJobSpec:
    name: str
    sql: str
    description: str
    parallelism: int
    checkpoint_interval: str
    upstream: tuple[str, ...] = field(default_factory=tuple)
    downstream: tuple[str, ...] = field(default_factory=tuple)
    checkpoint_max_age_s: float = 120.0
    state_ttl: str | None = None
    vars: dict = field(default_factory=dict, hash=False, compare=False)
    on_restore_failure: str = "fail"  # fail | reset (restart without state when a restore fails)
    lookup: tuple[str, ...] = field(default_factory=tuple)  # upstream tables read by lookup join, not streamed
    reset_replays: bool = True  # restarted without state, the job writes its whole output again

    @property
    def streamed(self) -> tuple[str, ...]:
        """Registered upstream tables the job reads as a changelog stream (not by lookup)."""
        return tuple(t for t in self.upstream if not t.startswith("mysql:") and t not in self.lookup)


@dataclass(frozen=True)
class Registry:
    tables: dict[str, TableSpec]
    jobs: dict[str, StreamingJobSpec]

    def table(self, name: str) -> TableSpec:
        """A registered table; anything else is refused with the list of valid names."""
        try:
            return self.tables[name]
        except KeyError:
            raise RegistryError(
                f"unknown table {name!r}; registered tables: {', '.join(sorted(self.tables))}"
            ) from None

    def job(self, name: str) -> StreamingJobSpec:
        try:
            return self.jobs[name]
        except KeyError:
            raise RegistryError(
                f"unknown streaming job {name!r}; registered jobs: {', '.join(sorted(self.jobs))}"
            ) from None

    def tables_in_layer(self, layer: str) -> list[TableSpec]:
        return [t for t in self.tables.values() if t.layer == layer]

    def writers(self, name: str) -> list[StreamingJobSpec]:
        """The streaming jobs that write table `name`."""
        return [job for job in self.jobs.values() if name in job.downstream]

    def partitioned_inputs(self, name: str) -> list[TableSpec]:
        """Registered tables partitioned like `name` that the streaming job writing `name` reads.

        A recomputation of one partition of `name` reads the same partition of these (dimension
        tables, unpartitioned, are read whole and are not included)."""
        target = self.table(name)
        inputs = {ref for job in self.writers(name) for ref in job.upstream}
        return [
            self.tables[ref]
            for ref in sorted(inputs)
            if ref in self.tables and target.partition and self.tables[ref].partition == target.partition
        ]

    def reset_cascade(self, name: str) -> list[tuple[StreamingJobSpec, tuple[str, ...]]]:
        """The jobs that must restart without state with `name`, and the tables each must read anew.

        A job restarted without state writes its whole output again (a CDC job takes a new
        snapshot, a Paimon-reading job re-reads its input). Into a table whose changelog is the
        writer's own output (`input`), that replay reaches every job streaming the table as new
        rows: their aggregates would count everything twice. Those jobs restart without state too,
        reading the replayed tables from the first snapshot the restarted writer commits, so they
        see every row exactly once; and so on downstream. A table with an idempotent changelog
        (`lookup`) stops the cascade. Returned in the order to start them, upstream first."""
        job = self.job(name)
        replayed = (
            {t for t in job.downstream if not self.tables[t].changelog_is_idempotent} if job.reset_replays else set()
        )
        cascade: list[tuple[StreamingJobSpec, tuple[str, ...]]] = []
        changed = True
        while changed:
            changed = False
            for consumer in self.jobs.values():
                if consumer.name == name or any(c.name == consumer.name for c, _ in cascade):
                    continue
                reads = tuple(t for t in consumer.streamed if t in replayed)
                if reads:
                    cascade.append((consumer, reads))
                    replayed |= {t for t in consumer.downstream if not self.tables[t].changelog_is_idempotent}
                    changed = True
        return cascade

    def mirrored_tables(self) -> list[TableSpec]:
        """ODS tables that mirror a MySQL table (and can be compared with it row by row)."""
        return [t for t in self.tables.values() if t.layer == "ods" and t.source]


# ------------------------------------------------------------------------------ loading
def _read(path: Path) -> dict:
    try:
        return load_yaml(path)
    except RegistryError:
        raise
    except ConfigError as exc:
        raise RegistryError(str(exc)) from None


def _check_sql_file(where: str, relative: str) -> None:
    if not (SQL_DIR / relative).is_file():
        raise RegistryError(f"{where}: SQL file sql/{relative} does not exist")


def _entry(where: str, spec: Any, what: str) -> dict:
    if not isinstance(spec, dict):
        raise RegistryError(f"{where}: expected a mapping of settings ({what}, ...), got {spec!r}")
    return spec


def load_registry(config_dir: Path = CONFIG_DIR) -> Registry:
    tables_file, jobs_file = config_dir / "tables.yaml", config_dir / "streaming_jobs.yaml"
    tables: dict[str, TableSpec] = {}
    entries = _validate(TablesFile, _read(tables_file), tables_file.name).tables or {}
    for name, spec in entries.items():
        where = f"{tables_file.name}: {name}"
        _entry(where, spec, "layer, ddl")
        parts = str(name).split(".")
        if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
            raise RegistryError(f"{where}: table names are <database>.<table> in lower snake case")
        entry: TableModel = _validate(TableModel, spec, where)
        _check_sql_file(where, entry.ddl)
        if entry.model:
            _check_sql_file(where, entry.model)
        tables[name] = TableSpec(
            name=name,
            layer=entry.layer,
            ddl=entry.ddl,
            primary_key=tuple(entry.primary_key),
            partition=entry.partition,
            source=entry.source.table if entry.source else None,
            freshness_column=entry.freshness_column,
            freshness_sla_s=parse_duration(entry.freshness_sla, where) if entry.freshness_sla else None,
            model=entry.model,
            source_change_column=entry.source.change_column if entry.source else None,
            source_day_column=entry.source.day_column if entry.source else None,
            totals=tuple(entry.totals),
            statuses=tuple(entry.statuses),
        )
    jobs: dict[str, StreamingJobSpec] = {}
    entries = _validate(JobsFile, _read(jobs_file), jobs_file.name).jobs or {}
    for name, spec in entries.items():
        where = f"{jobs_file.name}: {name}"
        _entry(where, spec, "sql, parallelism")
        if not _IDENT.match(str(name)):
            raise RegistryError(f"{where}: job names are lower snake case")
        job: JobModel = _validate(JobModel, spec, where)
        _check_sql_file(where, job.sql)
        for table in job.downstream:
            if table not in tables:
                raise RegistryError(f"{where}: downstream table {table!r} is not in {tables_file.name}")
        for ref in job.upstream:
            if not (ref.startswith("mysql:") and _IDENT.match(ref[len("mysql:") :])) and ref not in tables:
                raise RegistryError(f"{where}: upstream {ref!r} is neither mysql:<table> nor a registered table")
        jobs[name] = StreamingJobSpec(
            name=name,
            sql=job.sql,
            description=job.description,
            parallelism=job.parallelism,
            checkpoint_interval=job.checkpoint_interval,
            upstream=tuple(job.upstream),
            downstream=tuple(job.downstream),
            checkpoint_max_age_s=parse_duration(job.checkpoint_max_age, where),
            state_ttl=job.state_ttl,
            vars=dict(job.vars),
            on_restore_failure=job.on_restore_failure,
            lookup=tuple(job.lookup),
            reset_replays=job.reset_replays,
        )
    reg = Registry(tables=tables, jobs=jobs)
    for name, spec in jobs.items():
        cascade = reg.reset_cascade(name) if spec.on_restore_failure == "reset" else []
        if cascade:  # supervision would reset it unconfirmed, and its readers would count the replay twice
            raise RegistryError(
                f"{jobs_file.name}: {name}: on_restore_failure: reset would restart it without state on any failed "
                f"restore, and its replayed output would be counted twice by its reset cascade "
                f"({', '.join(c.name for c, _ in cascade)}), which restarts without state only through "
                "streaming_operations restart_without_state; set on_restore_failure: fail"
            )
    return reg


# ------------------------------------------------------------------------------ lineage
_TABLE_REF = re.compile(r"`?lakehouse`?\s*\.\s*`?([A-Za-z0-9_]+)`?\s*\.\s*`?([A-Za-z0-9_]+)`?", re.I)
_WRITTEN = re.compile(r"\bINSERT\s+(?:INTO|OVERWRITE)\s+(?:TABLE\s+)?$", re.I)  # the text just before a target
_LOOKED_UP = re.compile(r"\s+FOR\s+SYSTEM_TIME\s+AS\s+OF\b", re.I)  # the text just after a lookup-joined table
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(?:TEMPORARY\s+)?TABLE\b", re.I)


@dataclass(frozen=True)
class Lineage:
    """What a job's SQL reads (`lakehouse.<db>.<table>` as `<db>.<table>`, mysql-cdc sources as
    `mysql:<table>`), which of those it looks up (FOR SYSTEM_TIME AS OF), and what it writes."""

    reads: frozenset[str]
    lookups: frozenset[str]
    writes: frozenset[str]


def sql_lineage(relative: str, variables: dict | None = None) -> Lineage:
    """The tables a streaming job's SQL file reads and writes, as the job runs it.

    The file is rendered as the deployment renders it (mode=streaming, the job's vars), following
    `{% include %}`, `{% import %}` and macros; connection settings (mysql.*, ...) are placeholders,
    they name no table. Comments are dropped. A `lakehouse.<db>.<table>` after INSERT INTO/OVERWRITE
    is written, any other is read; a CREATE TABLE with 'connector' = 'mysql-cdc' reads
    mysql:<its table-name>."""
    import jinja2

    from lakehouse.core.sql_files import SQL_FILTERS, split_statements

    class Placeholder(jinja2.ChainableUndefined):
        def _same(self, *args, **kwargs):
            return self

        __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __call__ = _same

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SQL_DIR)), undefined=Placeholder, autoescape=False)
    env.filters.update(SQL_FILTERS)
    try:
        text = env.get_template(relative).render(**{**(variables or {}), "mode": "streaming"})
    except jinja2.TemplateError as exc:
        raise RegistryError(f"cannot render sql/{relative} to check its lineage: {exc}") from exc
    reads, lookups, writes = set(), set(), set()
    for statement in split_statements(text):
        for match in _TABLE_REF.finditer(statement):
            name = f"{match.group(1)}.{match.group(2)}".lower()
            if _WRITTEN.search(statement, 0, match.start()):
                writes.add(name)
            else:
                reads.add(name)
                if _LOOKED_UP.match(statement, match.end()):
                    lookups.add(name)
        if _CREATE_TABLE.match(statement):
            options = declared_options(statement)
            if options.get("connector", "").lower() == "mysql-cdc" and options.get("table-name"):
                reads.add(f"mysql:{options['table-name']}")
    return Lineage(frozenset(reads), frozenset(lookups), frozenset(writes))


def check_lineage(reg: Registry, jobs_file: str = "streaming_jobs.yaml") -> None:
    """Each job's declared upstream, lookup and downstream equal what its SQL reads, looks up and
    writes (`sql_lineage`); otherwise RegistryError naming each job, its file and the difference.

    Renders every job's templates, so it runs in the unit tests (tests/unit/core/test_registry.py) rather
    than on every load: the SQL files and the registry ship together."""
    problems = []
    for job in reg.jobs.values():
        found = sql_lineage(job.sql, job.vars)
        for key, declared, actual, does, do in (
            ("upstream", job.upstream, found.reads, "reads", "read"),
            ("lookup", job.lookup, found.lookups, "looks up", "look up"),
            ("downstream", job.downstream, found.writes, "writes", "write"),
        ):
            unlisted, unused = sorted(set(actual) - set(declared)), sorted(set(declared) - set(actual))
            parts = ([f"sql/{job.sql} {does} {unlisted}, not in its {key}"] if unlisted else []) + (
                [f"its {key} lists {unused}, which sql/{job.sql} does not {do}"] if unused else []
            )
            if parts:
                problems.append(f"{jobs_file}: {job.name}: {key} does not match its SQL: {'; '.join(parts)}")
    if problems:
        raise RegistryError("\n".join(problems) + "\nfix the job's entry in streaming_jobs.yaml or its SQL")


def pipeline_prefix() -> str:
    """Prefix of every Flink pipeline name of this deployment (env LAKEHOUSE_PIPELINE_PREFIX, default
    none): lets a second deployment (tests, blue/green) share a Flink cluster with the first."""
    import os

    prefix = os.environ.get("LAKEHOUSE_PIPELINE_PREFIX", "")
    if prefix and not _IDENT.match(prefix.rstrip("_") or "x"):
        raise RegistryError(f"LAKEHOUSE_PIPELINE_PREFIX {prefix!r} must be lower snake case")
    return prefix


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The project's registry, loaded once per process."""
    return load_registry()
