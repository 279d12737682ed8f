"""The Python-owned Paimon tables in the `ops` database (deployment history, maintenance metrics,
data quality results and quarantine): each declared once, written and read the same way.

    DEPLOYMENTS = OpsTable("ops.streaming_deployments", lambda pa: [("event_time", pa.timestamp("ms")), ...])
    DEPLOYMENTS.append(paimon, [{"event_time": ..., ...}])   # creates the table on first use
    DEPLOYMENTS.read(paimon)                                   # [] while it does not exist

The columns are given as a function of the pyarrow module, so declaring a table imports nothing
heavy (modules that declare one are imported when DAGs are parsed). `append` creates the table
(append-only, `PaimonHook.ensure_ops_table`) once per hook, converts the rows with the schema
(a row missing a column writes NULL; a value of the wrong type fails before anything is written)
and commits them in one snapshot.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lakehouse.hooks.paimon import PaimonHook


@dataclass(frozen=True, eq=False)
class OpsTable:
    """One `ops.*` table: its name and columns (a function of the pyarrow module -> [(name, type)])."""

    name: str
    columns: Callable[[Any], Sequence[tuple[str, Any]]] = field(repr=False)
    # Hooks this process already created the table through (each hook has its own catalog).
    _ensured: weakref.WeakSet = field(default_factory=weakref.WeakSet, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name.startswith("ops."):
            raise ValueError(f"{self.name}: ops tables live in the ops database (ops.<table>)")

    @cached_property
    def schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(list(self.columns(pa)))

    def ensure(self, paimon: PaimonHook) -> None:
        """Create the table if it does not exist (once per hook)."""
        if paimon not in self._ensured:
            paimon.ensure_ops_table(self.name, self.schema)
            self._ensured.add(paimon)

    def append(self, paimon: PaimonHook, rows: list[dict]) -> int | None:
        """Append `rows` in one commit; returns the new snapshot id (None, and nothing written, for no rows)."""
        import pyarrow as pa

        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=self.schema)  # before ensure: bad rows create nothing
        self.ensure(paimon)
        return paimon.append_rows(self.name, table)

    def read(self, paimon: PaimonHook, *, columns: Sequence[str] | None = None) -> list[dict]:
        """Every row (optionally some columns) as dicts; [] while the table does not exist."""
        if paimon not in self._ensured and not paimon.table_exists(self.name):
            return []
        return paimon.read_arrow(self.name, columns=columns).to_pylist()
