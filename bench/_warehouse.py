"""The benchmarks' own Paimon warehouse (.stack/bench-warehouse): the user's tables are never touched."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def fresh_bench_warehouse(conn_id: str = "paimon_default") -> Path:
    """Empty .stack/bench-warehouse and point the Airflow connection `conn_id` at it."""
    warehouse = Path(os.environ["LAKEHOUSE_HOME"]) / "bench-warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    warehouse.mkdir(parents=True)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "paimon", "extra": {"warehouse": str(warehouse)}})
    return warehouse
