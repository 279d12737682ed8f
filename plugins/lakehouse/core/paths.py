"""Where the project's files live, resolved from this package's location (no I/O)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SQL_DIR = REPO_ROOT / "sql"
CONFIG_DIR = REPO_ROOT / "config"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
