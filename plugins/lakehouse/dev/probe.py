"""Insert-to-visible delay: how long after a row is written in MySQL it can be read in Paimon.

The load generator stamps each order's created_at with the wall-clock time of its insert. For
every new Paimon snapshot of ods.ods_orders, the orders that became visible in it give one
delay each: snapshot commit time - created_at. Reads are incremental (order_id above the
largest seen so far), so polling stays cheap as the table grows.
"""

from __future__ import annotations

import math
import statistics
import threading
from dataclasses import dataclass, field
from datetime import UTC

from lakehouse.core.polling import WaitTimeout, wait_until
from lakehouse.hooks.paimon import PaimonHook


@dataclass
class DelayStats:
    samples: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        # Nearest rank: the smallest sample with at least p % of the samples at or below it.
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered) / 100) - 1))]

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        return (
            f"n={len(self.samples)} p50={self.percentile(50):.1f}s p95={self.percentile(95):.1f}s "
            f"p99={self.percentile(99):.1f}s max={max(self.samples):.1f}s mean={statistics.fmean(self.samples):.1f}s"
        )


class VisibilityProbe:
    """Watches a table's snapshots in a background thread and records per-row delays."""

    def __init__(
        self,
        paimon: PaimonHook,
        *,
        table: str = "ods.ods_orders",
        key: str = "order_id",
        time_column: str = "created_at",
        min_key: int = 0,
        poll_s: float = 0.5,
        in_order: bool = True,
    ):
        """`in_order=False` for tables whose writer may commit keys out of order (joins): every
        snapshot is then read above `min_key` and new keys are found with a set."""
        self.paimon, self.table, self.key, self.time_column = paimon, table, key, time_column
        self.min_key = min_key
        self.max_key = min_key
        self.in_order = in_order
        self.seen: set = set()
        self.poll_s = poll_s
        self.stats = DelayStats()
        self.snapshots_seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _poll_once(self, last_snapshot: int) -> int:
        latest = self.paimon.latest_snapshot(self.table)
        if latest is None or latest.snapshot_id <= last_snapshot:
            return last_snapshot
        table = self.paimon.get_table(self.table)
        for sid in range(last_snapshot + 1, latest.snapshot_id + 1):
            snap = table.snapshot_manager().get_snapshot_by_id(sid)
            if snap is None:
                continue
            at = table.copy({"scan.snapshot-id": str(sid)})
            builder = at.new_read_builder().with_projection([self.key, self.time_column])
            floor = self.max_key if self.in_order else self.min_key
            builder = builder.with_filter(builder.new_predicate_builder().greater_than(self.key, floor))
            rows = builder.new_read().to_arrow(builder.new_scan().plan().splits())
            self.snapshots_seen += 1
            if rows.num_rows == 0:
                continue
            commit_s = snap.time_millis / 1000
            keys = rows.column(self.key).to_pylist()
            for key, created in zip(keys, rows.column(self.time_column).to_pylist(), strict=True):
                if not self.in_order:
                    if key in self.seen:
                        continue
                    self.seen.add(key)
                self.stats.samples.append(commit_s - created.replace(tzinfo=UTC).timestamp())
            self.max_key = max(self.max_key, max(keys))
        return latest.snapshot_id

    def _run(self) -> None:
        latest = self.paimon.latest_snapshot(self.table)
        last = latest.snapshot_id if latest else 0
        try:
            while not self._stop.is_set():
                last = self._poll_once(last)
                self._stop.wait(self.poll_s)
            self._poll_once(last)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> VisibilityProbe:
        self._thread = threading.Thread(target=self._run, name="visibility-probe", daemon=True)
        self._thread.start()
        return self

    def visible(self, key: int, count: int | None = None) -> bool:
        """Whether `key` (in order) or `count` keys above min_key (out of order) are visible."""
        return len(self.seen) >= count if (not self.in_order and count is not None) else self.max_key >= key

    def wait_for_key(self, key: int, timeout: float, count: int | None = None) -> bool:
        """Wait up to `timeout` s until `key` (or `count` keys) is visible or the probe failed; whether it is."""
        try:
            wait_until(
                lambda: self.visible(key, count) or self.error is not None,
                timeout=timeout,
                interval=0.2,
                what=f"key {key} to be visible in {self.table}",
            )
        except WaitTimeout:
            pass
        return self.visible(key, count)

    def stop(self) -> DelayStats:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=60)
        if self.error:
            raise self.error
        return self.stats
