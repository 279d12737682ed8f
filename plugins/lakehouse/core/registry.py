"""Typed view of config/tables.yaml and config/streaming_jobs.yaml.

Loading validates the files (SQL files exist, jobs name only registered tables), so a typo
fails at DAG parse time with a message naming the file and the entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lakehouse.core.paths import CONFIG_DIR, SQL_DIR
from lakehouse.core.sql_files import declared_options

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class RegistryError(ValueError):
    """config/*.yaml is malformed or names something that does not exist."""


@dataclass(frozen=True)
class TableSpec:
    name: str  # database.table
    layer: str
    ddl: str
    primary_key: tuple[str, ...]
    partition: str | None = None
    source: str | None = None
    freshness_column: str | None = None
    freshness_sla_s: float | None = None
    model: str | None = None

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
            raise RegistryError(f"unknown table {name!r}; registered tables: {', '.join(sorted(self.tables))}") from None

    def job(self, name: str) -> StreamingJobSpec:
        try:
            return self.jobs[name]
        except KeyError:
            raise RegistryError(f"unknown streaming job {name!r}; registered jobs: {', '.join(sorted(self.jobs))}") from None

    def tables_in_layer(self, layer: str) -> list[TableSpec]:
        return [t for t in self.tables.values() if t.layer == layer]

    def partitioned_inputs(self, name: str) -> list[TableSpec]:
        """Registered tables partitioned like `name` that the streaming job writing `name` reads.

        A recomputation of one partition of `name` reads the same partition of these (dimension
        tables, unpartitioned, are read whole and are not included)."""
        target = self.table(name)
        inputs = {ref for job in self.jobs.values() if name in job.downstream for ref in job.upstream}
        return [self.tables[ref] for ref in sorted(inputs)
                if ref in self.tables and target.partition and self.tables[ref].partition == target.partition]

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
        replayed = {t for t in job.downstream if not self.tables[t].changelog_is_idempotent} if job.reset_replays else set()
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


def _load_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistryError(f"{path} must be a mapping")
    return data


def parse_duration(text: str, where: str) -> float:
    """'10s', '2min', '36h', '500ms' -> seconds; anything else is a RegistryError."""
    m = re.match(r"^(\d+)\s*(ms|s|min|h)$", str(text).strip())
    if not m:
        raise RegistryError(f"{where}: {text!r} is not a duration like '10s', '2min' or '36h'")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600}[m.group(2)]


def _restore_policy(value: str, where: str) -> str:
    if value not in ("fail", "reset"):
        raise RegistryError(f"{where}: on_restore_failure must be fail or reset, got {value!r}")
    return value


def _flag(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"{where} must be true or false, got {value!r}")
    return value


def _check_sql_file(where: str, relative: str) -> None:
    if not (SQL_DIR / relative).is_file():
        raise RegistryError(f"{where}: SQL file sql/{relative} does not exist")


def load_registry(config_dir: Path = CONFIG_DIR) -> Registry:
    tables_file, jobs_file = config_dir / "tables.yaml", config_dir / "streaming_jobs.yaml"
    tables: dict[str, TableSpec] = {}
    for name, spec in (_load_yaml(tables_file).get("tables") or {}).items():
        where = f"{tables_file.name}: {name}"
        if not isinstance(spec, dict):
            raise RegistryError(f"{where}: expected a mapping of settings (layer, ddl, ...), got {spec!r}")
        parts = str(name).split(".")
        if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
            raise RegistryError(f"{where}: table names are <database>.<table> in lower snake case")
        if spec.get("layer") not in ("ods", "dwd", "dws"):
            raise RegistryError(f"{where}: layer must be ods, dwd or dws")
        _check_sql_file(where, spec.get("ddl", ""))
        if spec.get("model"):
            _check_sql_file(where, spec["model"])
        sla = spec.get("freshness_sla")
        tables[name] = TableSpec(
            name=name,
            layer=spec["layer"],
            ddl=spec["ddl"],
            primary_key=tuple(spec.get("primary_key") or ()),
            partition=spec.get("partition"),
            source=spec.get("source"),
            freshness_column=spec.get("freshness_column"),
            freshness_sla_s=parse_duration(sla, where) if sla else None,
            model=spec.get("model"),
        )
    jobs: dict[str, StreamingJobSpec] = {}
    for name, spec in (_load_yaml(jobs_file).get("jobs") or {}).items():
        where = f"{jobs_file.name}: {name}"
        if not isinstance(spec, dict):
            raise RegistryError(f"{where}: expected a mapping of settings (sql, parallelism, ...), got {spec!r}")
        if not _IDENT.match(str(name)):
            raise RegistryError(f"{where}: job names are lower snake case")
        _check_sql_file(where, spec.get("sql", ""))
        interval = str(spec.get("checkpoint_interval", "10s"))
        parse_duration(interval, where)
        if spec.get("state_ttl"):
            parse_duration(spec["state_ttl"], where)
        for table in spec.get("downstream") or ():
            if table not in tables:
                raise RegistryError(f"{where}: downstream table {table!r} is not in {tables_file.name}")
        for ref in spec.get("upstream") or ():
            if not str(ref).startswith("mysql:") and ref not in tables:
                raise RegistryError(f"{where}: upstream {ref!r} is neither mysql:<table> nor a registered table")
        jobs[name] = StreamingJobSpec(
            name=name,
            sql=spec["sql"],
            description=spec.get("description", ""),
            parallelism=int(spec.get("parallelism", 1)),
            checkpoint_interval=interval,
            upstream=tuple(spec.get("upstream") or ()),
            downstream=tuple(spec.get("downstream") or ()),
            checkpoint_max_age_s=parse_duration(spec.get("checkpoint_max_age", "2min"), where),
            state_ttl=spec.get("state_ttl"),
            vars=dict(spec.get("vars") or {}),
            on_restore_failure=_restore_policy(spec.get("on_restore_failure", "fail"), where),
            lookup=tuple(spec.get("lookup") or ()),
            reset_replays=_flag(spec.get("reset_replays", True), f"{where}: reset_replays"),
        )
        stray = set(jobs[name].lookup) - set(jobs[name].upstream)
        if stray:
            raise RegistryError(f"{where}: lookup tables {sorted(stray)} are not in its upstream")
    return Registry(tables=tables, jobs=jobs)


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
