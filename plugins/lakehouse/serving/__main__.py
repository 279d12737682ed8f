"""python -m lakehouse.serving render | setup | refresh --dt YYYY-MM-DD [--tables ...]"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lakehouse.core.resources import resources
from lakehouse.serving.config import CONN_ID, serving_config, serving_configured
from lakehouse.serving.refresh import refresh_after_publish, setup_serving
from lakehouse.serving.render import redact, setup_statements

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """python -m lakehouse.serving render | setup | refresh --dt YYYY-MM-DD [--tables ...]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lakehouse.serving", description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="print the setup statements (S3 keys redacted)")
    sub.add_parser("setup", help="create the catalog, database and views in StarRocks (idempotent)")
    refresh = sub.add_parser("refresh", help="refresh one day of the views on the given tables")
    refresh.add_argument("--dt", required=True)
    refresh.add_argument("--tables", nargs="*", help="published tables (default: every table with a view)")
    args = parser.parse_args(argv)

    r = resources()
    if args.command != "render" and not serving_configured():
        print(
            f"connection '{CONN_ID}' is not defined: StarRocks is not part of this deployment "
            f"(define AIRFLOW_CONN_{CONN_ID.upper()}, see docs/SERVING.md)"
        )
        return 1
    if args.command == "render":
        for statement in setup_statements(paimon=r.paimon):
            print(redact(statement) + ";\n")
    elif args.command == "setup":
        for what in setup_serving(starrocks=r.starrocks, paimon=r.paimon):
            print("ok:", what)
    else:
        tables = args.tables or sorted({t for v in serving_config().views.values() for t in v.tables})
        for view in refresh_after_publish(args.dt, tables, starrocks=r.starrocks):
            print("refreshed:", view)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
