"""The benchmarks import their shared modules as top-level names (bench/ is on sys.path when a bench runs)."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
