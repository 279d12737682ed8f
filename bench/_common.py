"""What every benchmark shares: its own Paimon warehouse (.stack/bench-warehouse, the user's tables
are never touched) and where its figures are kept (bench/results/<name>-<time>.json)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def fresh_bench_warehouse(conn_id: str = "paimon_default") -> Path:
    """Empty .stack/bench-warehouse and point the Airflow connection `conn_id` at it."""
    warehouse = Path(os.environ["LAKEHOUSE_HOME"]) / "bench-warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    warehouse.mkdir(parents=True)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "paimon", "extra": {"warehouse": str(warehouse)}}
    )
    return warehouse


def save_results(name: str, results) -> Path:
    """Write a run's figures to bench/results/<name>-<time>.json (one file per run) and say where."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"bench: results in {out}")
    return out
