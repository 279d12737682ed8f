"""`ops.alerts`: every alert, sent or not, with its delivery; and the decisions made from it
(one alert per (kind, subject) per window; since when a problem lasts).

Every occurrence is a row: `sent` (delivered to every destination chosen), `failed` (a delivery
failed: `delivery_error` says which and why), `recorded` (no destination takes this severity:
the row is the alert), `suppressed` (the same (kind, subject) was alerted less than a window ago)
or `dismissed` (a deadline that turned out not to be a problem: `note` says why).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from lakehouse.core.ops_tables import OpsTable

if TYPE_CHECKING:
    from lakehouse.hooks.paimon import PaimonHook

ALERTS_TABLE = "ops.alerts"
ALERTS = OpsTable(
    ALERTS_TABLE,
    lambda pa: [
        ("alert_time", pa.timestamp("ms", tz="UTC")),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("subject", pa.string()),
        ("status", pa.string()),  # sent | failed | recorded | suppressed | dismissed
        ("since", pa.timestamp("ms", tz="UTC")),
        ("occurrences", pa.int64()),  # since the last alert of this (kind, subject) that went out
        ("title", pa.string()),
        ("text", pa.string()),
        ("runbook", pa.string()),
        ("destinations", pa.string()),  # comma-separated: webhook, smtp
        ("delivery_error", pa.string()),
        ("note", pa.string()),
        ("dag_id", pa.string()),
        ("task_id", pa.string()),
        ("run_id", pa.string()),
        ("map_index", pa.int64()),
        ("try_number", pa.int64()),
        ("error_class", pa.string()),
    ],
)
ALERTED = frozenset({"sent", "failed", "recorded"})  # went out (or was attempted): starts a window


def read_alerts(paimon: PaimonHook, *, columns: Sequence[str] | None = None) -> list[dict]:
    """Every row of ops.alerts, oldest first ([] before the first alert)."""
    return sorted(ALERTS.read(paimon, columns=columns), key=lambda r: r["alert_time"])


def streak(times: Iterable[datetime], gap: timedelta) -> list[datetime]:
    """The newest run of times in which consecutive ones are at most `gap` apart (oldest first)."""
    ordered = sorted(times)
    if not ordered:
        return []
    start = len(ordered) - 1
    while start > 0 and ordered[start] - ordered[start - 1] <= gap:
        start -= 1
    return ordered[start:]


@dataclass(frozen=True)
class Decision:
    send: bool
    since: datetime  # the start of the streak this occurrence belongs to
    occurrences: int  # since the last alert that went out, this one included
    last_alerted: datetime | None


def decide(
    history: Iterable[dict], *, kind: str, subject: str, now: datetime, window: timedelta, since: datetime | None
) -> Decision:
    """Whether this occurrence of (kind, subject) goes out: not when one went out less than
    `window` ago. Occurrences within `window` of each other are one problem (its `since`)."""
    rows = [r for r in history if r["kind"] == kind and r["subject"] == subject and r["status"] != "dismissed"]
    alerted = [r["alert_time"] for r in rows if r["status"] in ALERTED]
    last = max(alerted) if alerted else None
    after_last = sum(1 for r in rows if last is None or r["alert_time"] > last)
    start = streak([r["alert_time"] for r in rows] + [now], window)[0]
    if since is not None:
        start = min(start, since)
    send = last is None or window <= timedelta(0) or now - last >= window
    return Decision(send=send, since=start, occurrences=after_last + 1, last_alerted=last)


def format_row(row: dict) -> str:
    """One line per alert: when, status, severity, kind, subject, how often since when, problems."""
    since = f" since {row['since']:%Y-%m-%d %H:%M}" if row.get("since") else ""
    extra = "; ".join(filter(None, [row.get("delivery_error"), row.get("note")]))
    return (
        f"{row['alert_time']:%Y-%m-%d %H:%M:%S} {row['status']:<10} {row['severity']:<8} {row['kind']} "
        f"{row['subject']} x{row.get('occurrences') or 1}{since}"
        + (f" [{row['destinations']}]" if row.get("destinations") else "")
        + (f" ({extra})" if extra else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lakehouse.alerts.history [--last N] [--kind K] [--text]`: the newest alerts."""
    import argparse

    from lakehouse.hooks.paimon import PaimonHook

    parser = argparse.ArgumentParser(prog="python -m lakehouse.alerts.history", description=main.__doc__)
    parser.add_argument("--last", type=int, default=20, help="how many of the newest alerts (default 20)")
    parser.add_argument("--kind", help="only this kind (e.g. streaming_job_unhealthy)")
    parser.add_argument("--text", action="store_true", help="print each alert's full text")
    parser.add_argument("--conn-id", default="paimon_default", help="the Paimon connection (default paimon_default)")
    args = parser.parse_args(argv)
    rows = [r for r in read_alerts(PaimonHook(args.conn_id)) if not args.kind or r["kind"] == args.kind]
    if not rows:
        print("no alerts in ops.alerts")
    for row in rows[-args.last :]:
        print(format_row(row))
        if args.text:
            print("    " + row["text"].replace("\n", "\n    ") + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
