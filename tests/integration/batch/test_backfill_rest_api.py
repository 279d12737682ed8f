"""The on-call backfill through a running Airflow: api-server, scheduler, dag-processor and triggerer.

The tests trigger `t1_backfill` over the REST API, as the UI's trigger form does, and create an
Airflow 3 backfill of `t1_daily` (POST /api/v2/backfills, as the UI's "Run backfill" does), and check
the outcome from the API (run state, XComs, task logs) and in the warehouse (tags, partitions). The
services are the session's throw-away Airflow (fixture `airflow_api`, tests/integration/airflow_services.py):
their own Airflow home and SQLite database, free ports, auth on, connections pointing at this session's
throw-away warehouse and MySQL database (it_env), so neither the user's Airflow nor the demo warehouse
is touched. Their Flink pipelines are this session's PREFIX-named ones (LAKEHOUSE_PIPELINE_PREFIX).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lakehouse.batch.recompute import BATCH_SESSION, recomputable_tables
from lakehouse.core.days import tag_name
from lakehouse.core.flink_sql import catalog_statements
from lakehouse.dev.loadgen import LoadGenerator
from tests.integration.airflow_services import DAG_ID, DAILY_DAG_ID, RUN_TIMEOUT_S, Airflow
from tests.integration.helpers import backdated_clock, days_written, start_order_pipeline, wait_dws_equals_truth

pytestmark = pytest.mark.integration

TABLE = "dws.dws_city_daily"
TODAY = datetime.now(UTC).date()
YESTERDAY, TWO_DAYS_AGO = (TODAY - timedelta(days=1)).isoformat(), (TODAY - timedelta(days=2)).isoformat()
# The days the Airflow backfill of t1_daily publishes. Not the days test_t1_batch.py publishes
# (today-2, today-1): a published tag is never moved, so sharing a day would make either module's
# tag assertions depend on which module ran first in the session.
DAILY_DAYS = ((TODAY - timedelta(days=4)).isoformat(), (TODAY - timedelta(days=3)).isoformat())
EVENTS_PER_DAY = 48  # user events the test writes to ODS for each of DAILY_DAYS


def test_dry_run_triggered_over_rest_api_reports_the_partition(airflow_api, it_env):
    api = airflow_api
    # Streaming jobs of other tests may be writing the table meanwhile (APPEND and COMPACT commits):
    # "writes nothing" means no OVERWRITE commit after this point.
    latest = it_env.paimon.latest_snapshot(TABLE)  # the fixture created the table
    before = latest.snapshot_id if latest else 0
    conf = {"tables": [TABLE], "start_date": YESTERDAY, "end_date": YESTERDAY, "dry_run": True, "parallel_days": 1}
    r = api.trigger(conf)
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["conf"] == conf and created["logical_date"] is None and created["run_type"] == "manual"
    run_id = created["dag_run_id"]

    run = api.wait_run(run_id)
    assert run["state"] == "success", api.diagnostics(run_id)
    states = {name: ti["state"] for name, ti in api.task_instances(run_id).items()}
    # A dry run is the preview: nothing to approve, no lane to run.
    assert states == {
        "validate_request": "success",
        "preview": "success",
        "approve_writes": "skipped",
        "lanes_of": "skipped",
        "backfill_lane": "skipped",
        "report": "skipped",
    }, states

    r = api.get(f"{api.run_path(run_id)}/taskInstances/preview/xcomEntries/return_value")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    rows = (json.loads(value) if isinstance(value, str) else value)["rows"]
    assert [(row["table"], row["dt"], row["dry_run"]) for row in rows] == [(TABLE, YESTERDAY, True)], rows
    # A dry run reports what is there and writes nothing: no overwrite snapshot, none in the table.
    assert rows[0]["after"] is None and rows[0]["overwrite_snapshot_id"] is None, rows
    assert [
        s.snapshot_id
        for s in it_env.paimon.list_snapshots(TABLE)
        if s.snapshot_id > before and s.commit_kind == "OVERWRITE"
    ] == []
    report_log = api.task_log(run_id, "preview", api.task_instances(run_id)["preview"]["try_number"])
    assert f"{YESTERDAY} {TABLE}" in report_log and "(dry run)" in report_log, report_log[-3000:]


def _wait_for_approval(api: Airflow, run_id: str, task_id: str = "approve_writes", timeout: float = 180) -> dict:
    """The gate's request in the UI's Required actions, once the gate asked (deferred, on the triggerer)."""
    path = f"{api.run_path(run_id)}/taskInstances/{task_id}/-1/hitlDetails"
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(path)
        if r.status_code == 200:
            return r.json()
        assert r.status_code == 404, r.text
        run = api.get(api.run_path(run_id)).json()
        assert run["state"] in ("queued", "running"), f"run ended before asking for approval\n{api.diagnostics(run_id)}"
        if time.monotonic() > deadline:
            pytest.fail(f"{task_id} did not ask for approval within {timeout} s\n{api.diagnostics(run_id)}")
        time.sleep(2)


@pytest.mark.parametrize("answer", ["Reject", "Approve"])
def test_writes_wait_for_an_approval_that_shows_the_dry_run_report(airflow_api, it_env, answer):
    """With writes, the run previews every partition, then waits in Required actions: Reject writes
    nothing; Approve rebuilds the partition and reports it. Needs the triggerer (the gate defers)."""
    api = airflow_api
    latest = it_env.paimon.latest_snapshot(TABLE)
    before = latest.snapshot_id if latest else 0
    conf = {
        "tables": [TABLE],
        "start_date": TWO_DAYS_AGO,
        "end_date": TWO_DAYS_AGO,
        "dry_run": False,
        "parallel_days": 1,
    }
    r = api.trigger(conf)
    assert r.status_code == 200, r.text
    run_id = r.json()["dag_run_id"]

    asked = _wait_for_approval(api, run_id)
    assert asked["options"] == ["Approve", "Reject"] and asked["response_received"] is False, asked
    assert f"| {TWO_DAYS_AGO} | {TABLE} |" in asked["body"], asked["body"]
    assert asked["subject"].startswith("Overwrite 1 partitions"), asked["subject"]
    assert api.task_instances(run_id)["approve_writes"]["state"] == "deferred"
    assert [
        s for s in it_env.paimon.list_snapshots(TABLE) if s.snapshot_id > before and s.commit_kind == "OVERWRITE"
    ] == []

    r = api.http.patch(
        f"{api.run_path(run_id)}/taskInstances/approve_writes/-1/hitlDetails", json={"chosen_options": [answer]}
    )
    assert r.status_code == 200, r.text
    run = api.wait_run(run_id)
    assert run["state"] == "success", api.diagnostics(run_id)
    states = {name: ti["state"] for name, ti in api.task_instances(run_id).items()}
    overwrites = [
        s.snapshot_id
        for s in it_env.paimon.list_snapshots(TABLE)
        if s.snapshot_id > before and s.commit_kind == "OVERWRITE"
    ]
    if answer == "Reject":
        assert states["approve_writes"] == "success" and states["lanes_of"] == "skipped", states
        assert states["report"] == "skipped", states
        assert overwrites == []
        return
    assert states["backfill_lane[0]"] == "success" and states["report"] == "success", states
    # The grid names the lane by its days, not [0].
    lane = api.get(f"{api.run_path(run_id)}/taskInstances/backfill_lane/0").json()
    assert lane["rendered_map_index"] == TWO_DAYS_AGO, lane
    r = api.get(f"{api.run_path(run_id)}/taskInstances/report/xcomEntries/return_value")
    value = r.json()["value"]
    rows = json.loads(value) if isinstance(value, str) else value
    assert [(row["table"], row["dt"], row["dry_run"]) for row in rows] == [(TABLE, TWO_DAYS_AGO, False)], rows
    # Rebuilt and measured after (this session's ODS may hold nothing that day: an empty overwrite commits nothing).
    assert rows[0]["after"] is not None, rows


def test_bad_request_fails_in_validate_request_with_what_to_fix(airflow_api):
    api = airflow_api
    conf = {"tables": [TABLE], "start_date": YESTERDAY, "end_date": TWO_DAYS_AGO, "dry_run": True, "parallel_days": 1}
    r = api.trigger(conf)
    assert r.status_code == 200, r.text  # both are valid dates: the form accepts it, the DAG refuses it
    run_id = r.json()["dag_run_id"]

    run = api.wait_run(run_id)
    assert run["state"] == "failed", api.diagnostics(run_id)
    tis = api.task_instances(run_id)
    validate = tis["validate_request"]
    assert validate["state"] == "failed", {n: t["state"] for n, t in tis.items()}
    assert validate["try_number"] == 1  # retries=0: a bad request is not retried
    assert all(t["state"] in ("upstream_failed", None) for n, t in tis.items() if n != "validate_request"), {
        n: t["state"] for n, t in tis.items()
    }
    log = api.task_log(run_id, "validate_request", validate["try_number"])
    assert "Nothing was written. Fix the backfill request" in log, log[-3000:]
    assert f"end_date {TWO_DAYS_AGO} is before start_date {YESTERDAY}" in log, log[-3000:]


@pytest.mark.parametrize(
    "conf, message",
    [
        (
            {"tables": ["dws.no_such_table"], "start_date": YESTERDAY, "end_date": YESTERDAY},
            ["Invalid input for param tables", "'dws.no_such_table' is not one of"],
        ),
        (
            {"tables": [TABLE], "start_date": "2026-02-30", "end_date": YESTERDAY},
            ["Invalid input for param start_date", "'2026-02-30' is not a 'date'"],
        ),
    ],
)
def test_form_errors_are_refused_at_trigger_time(airflow_api, conf, message):
    api = airflow_api
    runs_before = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["total_entries"]
    r = api.trigger(conf)
    # Airflow validates the conf against the DAG's Params before creating the run: 400, no run.
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert all(m in detail for m in message), detail
    assert api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["total_entries"] == runs_before


def test_trigger_body_needs_logical_date(airflow_api):
    # The body must carry logical_date (null is fine): without it the API answers 422 naming the field.
    r = airflow_api.http.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"conf": {}})
    assert r.status_code == 422 and "logical_date" in r.text, r.text


# --------------------------------------------------------------------------- Airflow 3 backfill of t1_daily


def _midnight(day: str) -> str:
    return f"{day}T00:00:00Z"


def _backfill_body(dag_id: str, from_day: str, to_day: str) -> dict:
    return {
        "dag_id": dag_id,
        "from_date": _midnight(from_day),
        "to_date": _midnight(to_day),
        "run_backwards": False,
        "dag_run_conf": {},
        "reprocess_behavior": "none",
        "max_active_runs": 2,
    }


def _backfills(api: Airflow, dag_id: str = DAILY_DAG_ID) -> list[dict]:
    r = api.get("/api/v2/backfills", params={"dag_id": dag_id})
    assert r.status_code == 200, r.text
    return r.json()["backfills"]


def _wait_no_active_backfill(api: Airflow, timeout: float = 90) -> None:
    """The scheduler marks a backfill completed (every 30 s) once none of its runs is queued or running."""
    deadline = time.monotonic() + timeout
    while active := [b for b in _backfills(api) if b["completed_at"] is None]:
        assert time.monotonic() < deadline, f"backfills still active after {timeout} s: {active}\n{api.service_logs()}"
        time.sleep(2)


def _post_backfill(api: Airflow, body: dict, attempts: int = 3) -> httpx.Response:
    """POST /api/v2/backfills on a fresh connection (after a 500 the api-server drops it).

    On SQLite the request can collide with a scheduler transaction ("database is locked", a 500);
    the backfill row it committed before failing has no runs, so the scheduler closes it and the
    request is retried. Any other answer is returned as it is."""
    log = api.log_dir / "airflow-api-server.log"
    for attempt in range(attempts):
        offset = log.stat().st_size
        with httpx.Client(base_url=api.url, headers=dict(api.http.headers), timeout=30) as client:
            r = client.post("/api/v2/backfills", json=body)
        if r.status_code != 500:
            return r
        deadline = time.monotonic() + 10  # the api-server logs the traceback after it answered
        while "Exception in ASGI application" not in _read_from(log, offset) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(0.5)
        if "database is locked" not in _read_from(log, offset) or attempt == attempts - 1:
            return r
        _wait_no_active_backfill(api)
    return r


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _orders_with_amount(env, day: str) -> int:
    start = datetime.fromisoformat(day)
    return env.mysql.get_first(
        "SELECT COUNT(*) FROM orders WHERE created_at >= %s AND created_at < %s AND amount > 0",
        (start, start + timedelta(days=1)),
    )[0]


def _tag_snapshot_id(env, table: str, tag: str) -> int:
    found = env.paimon.get_table(table).tag_manager().get(tag)
    assert found is not None, f"{table} has no tag {tag}"
    return found.id


def _write_past_user_events(env) -> None:
    """EVENTS_PER_DAY app events on each of DAILY_DAYS, into ods.ods_user_events.

    The streaming source of that table (datagen standing in for the click stream) only produces
    events of the present, so the test writes the past days' events itself, as a batch INSERT
    through Flink (which owns the table)."""
    rows = [
        f"('it-{day}-{i}', {1 + i % 300}, {1 + i % 50}, 'SHOP_VIEW', "
        f"TIMESTAMP '{day} {i % 24:02d}:{i % 60:02d}:00', '{day}')"
        for day in DAILY_DAYS
        for i in range(EVENTS_PER_DAY)
    ]
    insert = "INSERT INTO lakehouse.ods.ods_user_events VALUES\n" + ",\n".join(rows)
    env.flink.execute_sql(catalog_statements(env.paimon) + [insert], session_config=BATCH_SESSION)


@pytest.fixture(scope="module")
def daily_days(it_env):
    """Orders and user events on DAILY_DAYS, the orders streamed through the it_ jobs into DWS.

    Deploys the it_ order pipeline, or adopts it when another module of the session already runs it."""
    env = it_env
    start_order_pipeline(env)
    for i, day in enumerate(DAILY_DAYS):
        LoadGenerator(env.mysql, rate=100, seed=60 + i, clock=backdated_clock(day)).run(duration_s=5)
    _write_past_user_events(env)
    wait_dws_equals_truth(env)
    return env


def test_airflow_backfill_of_t1_daily_publishes_both_days(airflow_api, daily_days):
    api, env = airflow_api, daily_days
    first, last = DAILY_DAYS
    expected_rows = {day: _orders_with_amount(env, day) for day in DAILY_DAYS}
    assert all(expected_rows.values()), expected_rows
    tables = [t.name for t in recomputable_tables()]
    assert not [(t, d) for t in tables for d in DAILY_DAYS if tag_name(d) in env.paimon.list_tags(t)], (
        "the days are already published: the backfill would not move their tags"
    )
    _wait_no_active_backfill(api)

    body = _backfill_body(DAILY_DAG_ID, first, last)
    # What the UI's "Run backfill" form previews: one run per day, from_date and to_date included.
    r = api.http.post("/api/v2/backfills/dry_run", json=body)
    assert r.status_code == 200, r.text
    assert [b["logical_date"] for b in r.json()["backfills"]] == [_midnight(d) for d in DAILY_DAYS], r.json()

    r = _post_backfill(api, body)
    assert r.status_code == 200, r.text
    backfill = r.json()
    assert (backfill["dag_id"], backfill["max_active_runs"], backfill["completed_at"]) == (DAILY_DAG_ID, 2, None), (
        backfill
    )

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        r = api.get(f"/api/v2/dags/{DAILY_DAG_ID}/dagRuns", params={"run_type": "backfill", "order_by": "logical_date"})
        assert r.status_code == 200, r.text
        runs = r.json()["dag_runs"]
        if len(runs) == 2 and all(run["state"] in ("success", "failed") for run in runs):
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"backfill runs not finished after {RUN_TIMEOUT_S} s: {[(x['dag_run_id'], x['state']) for x in runs]}\n"
                + "\n".join(api.diagnostics(x["dag_run_id"], DAILY_DAG_ID) for x in runs)
            )
        time.sleep(3)

    for day, run in zip(DAILY_DAYS, runs, strict=True):
        run_id = run["dag_run_id"]
        assert run["state"] == "success", api.diagnostics(run_id, DAILY_DAG_ID)
        # The run's data interval is the whole day: wait_for_day takes dt from its start.
        next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
        assert (
            run["run_type"],
            run["triggered_by"],
            run["logical_date"],
            run["data_interval_start"],
            run["data_interval_end"],
        ) == ("backfill", "backfill", _midnight(day), _midnight(day), _midnight(next_day)), run
        states = {name: ti["state"] for name, ti in api.task_instances(run_id, DAILY_DAG_ID).items()}
        assert states == {
            **dict.fromkeys(("wait_for_day", "recompute_day", "verify", "audit", "publish"), "success"),
            "refresh_serving": "skipped",
        }, states  # no StarRocks here
        r = api.get(f"{api.run_path(run_id, DAILY_DAG_ID)}/taskInstances/publish/xcomEntries/return_value")
        assert r.status_code == 200, r.text
        value = r.json()["value"]
        published = json.loads(value) if isinstance(value, str) else value

        # Every DWD/DWS table is tagged t1-<day>, at the OVERWRITE snapshot that rewrote this day (the
        # two runs recompute the same tables at the same time: the other day's OVERWRITE is not it).
        tag = tag_name(day)
        for table in tables:
            assert tag in env.paimon.list_tags(table), f"{table} has no tag {tag}"
            snapshot_id = _tag_snapshot_id(env, table, tag)
            kinds = {s.snapshot_id: s.commit_kind for s in env.paimon.list_snapshots(table)}
            assert kinds.get(snapshot_id) == "OVERWRITE", (
                f"{table} {tag} -> snapshot {snapshot_id} ({kinds.get(snapshot_id)})"
            )
            assert days_written(env, table, snapshot_id) == {day}, (
                f"{table} {tag} -> snapshot {snapshot_id}, which rewrote {days_written(env, table, snapshot_id)}"
            )
            assert published.get(table) == snapshot_id, (table, published)
        # The published days are what the test wrote: one DWD row per order with amount > 0 in MySQL,
        # and the events it wrote to ODS as page views.
        rows = env.paimon.read_arrow(
            "dwd.dwd_order_fact", tag=tag, partition={"dt": day}, columns=["order_id"]
        ).num_rows
        assert rows == expected_rows[day], (
            f"dwd.dwd_order_fact at {tag}: {rows} rows, MySQL has {expected_rows[day]} orders"
        )
        pv = env.paimon.read_arrow("dws.dws_shop_traffic_hourly", tag=tag, partition={"dt": day}, columns=["pv"])
        assert sum(pv.column("pv").to_pylist()) == EVENTS_PER_DAY, pv.to_pylist()

    # The backfill created exactly these runs; the scheduler closes it; nothing else ran for t1_daily.
    _wait_no_active_backfill(api)
    r = api.get(f"/api/v2/backfills/{backfill['id']}")
    assert r.status_code == 200 and r.json()["completed_at"], r.text
    all_runs = api.get(f"/api/v2/dags/{DAILY_DAG_ID}/dagRuns").json()
    assert all_runs["total_entries"] == 2, [(x["dag_run_id"], x["run_type"]) for x in all_runs["dag_runs"]]


@pytest.mark.parametrize(
    "body, status, detail",
    [
        (
            _backfill_body(
                DAILY_DAG_ID, (TODAY + timedelta(days=1)).isoformat(), (TODAY + timedelta(days=2)).isoformat()
            ),
            422,
            "Backfill cannot be executed for future dates.",
        ),
        (_backfill_body("no_such_dag", TWO_DAYS_AGO, YESTERDAY), 404, "Could not find dag no_such_dag"),
    ],
    ids=["future-range", "unknown-dag"],
)
def test_airflow_backfill_request_is_refused(airflow_api, body, status, detail):
    api = airflow_api
    # Only one backfill per DAG may be active, and that check comes first (409): wait for none.
    _wait_no_active_backfill(api)
    before = len(_backfills(api))
    r = _post_backfill(api, body)
    assert (r.status_code, r.json()["detail"]) == (status, detail), r.text
    assert len(_backfills(api)) == before  # refused before anything was created
    assert [b for b in _backfills(api) if b["completed_at"] is None] == []


def test_airflow_backfill_of_today_creates_no_run(airflow_api):
    """Today has not ended: t1_daily has no run for it to backfill (its runs cover whole past days).

    Airflow 3.2.1 answers this with a bare 500 (RuntimeError "No runs to create for Dag t1_daily" in
    the api-server's log), after it committed an empty backfill, which the scheduler then closes."""
    api = airflow_api
    _wait_no_active_backfill(api)
    runs_before = api.get(f"/api/v2/dags/{DAILY_DAG_ID}/dagRuns").json()["total_entries"]
    r = _post_backfill(api, _backfill_body(DAILY_DAG_ID, TODAY.isoformat(), TODAY.isoformat()))
    assert (r.status_code, r.text) == (500, "Internal Server Error"), r.text
    # _post_backfill waited for the traceback the api-server logs after answering.
    assert f"RuntimeError: No runs to create for Dag {DAILY_DAG_ID}" in (
        api.log_dir / "airflow-api-server.log"
    ).read_text(errors="replace"), api.service_logs()
    assert api.get(f"/api/v2/dags/{DAILY_DAG_ID}/dagRuns").json()["total_entries"] == runs_before
    _wait_no_active_backfill(api)  # and a new backfill can be created again
