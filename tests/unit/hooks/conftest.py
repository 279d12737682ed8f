"""Fixtures of the hook tests: the fake Flink REST server and a logger the hook writes to."""

from __future__ import annotations

import logging

import pytest

from tests.support.flink_rest import CONN_ID, FakeFlinkRest, serving


@pytest.fixture
def fake_flink(monkeypatch):
    with serving(FakeFlinkRest()) as fake:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}", f"flink://127.0.0.1:{fake.port}/?sql_gateway_port={fake.port}"
        )
        yield fake


@pytest.fixture
def hook_log(caplog):
    """Airflow's hook logger is structlog and does not reach caplog outside a task, so the hook
    gets a standard logging.Logger (the mixin uses `_log` when it is set)."""
    logger = logging.getLogger("test.lakehouse.flink_hook")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    return logger
