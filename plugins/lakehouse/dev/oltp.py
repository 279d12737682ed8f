"""The OLTP side: the delivery schema in MySQL/MariaDB and its reference dimension data."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from lakehouse.core.paths import SQL_DIR
from lakehouse.core.sql_files import split_statements

if TYPE_CHECKING:  # the load generator's worker processes import the constants without Airflow
    from lakehouse.hooks.mysql import MySqlHook

CITIES = ("shanghai", "hangzhou", "beijing", "shenzhen", "chengdu", "wuhan")
SHOP_CATEGORIES = ("noodles", "dumplings", "hotpot", "bbq", "tea", "bakery", "grocery")
SUBSIDY_PAYERS = ("PLATFORM", "SHOP")
TABLES = ("users", "shops", "riders", "orders", "order_status_events", "order_subsidies")


def create_schema(mysql: MySqlHook) -> None:
    """Create the delivery tables if they do not exist (sql/mysql/delivery_schema.sql)."""
    mysql.run_script(split_statements((SQL_DIR / "mysql" / "delivery_schema.sql").read_text()))


def seed_dimensions(mysql: MySqlHook, *, users: int = 2000, shops: int = 300, riders: int = 400, seed: int = 7) -> None:
    """Insert users, shops and riders with ids 1..N (existing ids are kept as they are)."""
    rng = random.Random(seed)
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT IGNORE INTO users (user_id, name, city, phone) VALUES (%s, %s, %s, %s)",
            [(i, f"user-{i}", rng.choice(CITIES), f"138{i:08d}") for i in range(1, users + 1)],
        )
        cur.executemany(
            "INSERT IGNORE INTO shops (shop_id, name, city, category) VALUES (%s, %s, %s, %s)",
            [(i, f"shop-{i}", rng.choice(CITIES), rng.choice(SHOP_CATEGORIES)) for i in range(1, shops + 1)],
        )
        cur.executemany(
            "INSERT IGNORE INTO riders (rider_id, name, city, status) VALUES (%s, %s, %s, %s)",
            [(i, f"rider-{i}", rng.choice(CITIES), "ONLINE") for i in range(1, riders + 1)],
        )


def table_counts(mysql: MySqlHook) -> dict[str, int]:
    """Row count of every delivery table (names are constants, not user input)."""
    return {t: mysql.get_first(f"SELECT COUNT(*) FROM `{t}`")[0] for t in TABLES}


def admin_connection():
    """The local stack's app user on MariaDB without a default database (MYSQL_PORT, MYSQL_APP_USER,
    MYSQL_APP_PASSWORD from scripts/env.sh), autocommit: for tools that create and drop their own
    databases (the integration sessions, bench/loadgen.py)."""
    import os

    import pymysql

    return pymysql.connect(
        host="127.0.0.1",
        port=int(os.environ.get("MYSQL_PORT", 3306)),
        user=os.environ.get("MYSQL_APP_USER", "app"),
        password=os.environ.get("MYSQL_APP_PASSWORD", "app"),
        autocommit=True,
    )
