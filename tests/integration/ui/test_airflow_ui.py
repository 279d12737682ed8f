"""The Airflow UI as on-call uses it, in headless Chromium (tests/integration/ui/browser.py).

Two Airflows, so that nothing the tests do lands in the user's Airflow database or warehouse:

- The stack's own Airflow (`make up`; its address and login from scripts/env.sh), read only: sign in,
  the DAG list shows the operational DAGs active, and each one's Runs tab a successful scheduled run
  (waited for, up to SCHEDULED_RUN_WAIT_S: on a fresh stack the first runs come a few minutes after
  `make up`; the DAGs skip what was never deployed and succeed).
- The session's throw-away Airflow (fixture `airflow_api`, tests/integration/airflow_services.py: its
  own home and SQLite database, connections to the session's throw-away warehouse and MySQL database),
  for what writes: a backfill of one past day of dws.dws_city_daily filled in and submitted in the
  Trigger form, approved on its Required Actions page after reading the dry-run report there, run to
  success; the rebuilt partition is checked in the warehouse against MariaDB.

Screenshots go to a temp dir (printed on failure); with UPDATE_SCREENSHOTS=1 also into docs/images
(docs/AIRFLOW_UI.md shows them).
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import pytest

from lakehouse.dev.loadgen import LoadGenerator
from lakehouse.dev.truth import compare_dws, valid_orders
from tests.integration.airflow_services import DAG_ID, Airflow
from tests.integration.conftest import STACK_HINT
from tests.integration.helpers import backdated_clock, days_written, start_order_pipeline, wait_dws_equals_truth

pytestmark = pytest.mark.integration

# Scheduled by the stack's Airflow: each must show a successful scheduled run.
OPERATIONAL_DAGS = ("streaming_supervision", "table_freshness", "dq_streaming_checks", "table_maintenance")
# Shown active (unpaused) in the DAG list.
ACTIVE_DAGS = (*OPERATIONAL_DAGS, "t1_daily")
SCHEDULED_RUN_WAIT_S = 360
RELOAD_S = 10  # how often a page waited on is reloaded
TABLE = "dws.dws_city_daily"
# A day no other module loads or rebuilds (they use today-1 .. today-6).
DAY = (datetime.now(UTC).date() - timedelta(days=7)).isoformat()
APPROVAL_WAIT_S = 180


# --------------------------------------------------------------------------- the stack's Airflow, read only


@pytest.fixture(scope="module")
def stack_airflow() -> tuple[str, str, str]:
    """The address and login of the stack's Airflow (scripts/env.sh), which must answer."""
    host, port = (
        os.environ.get("AIRFLOW_API_SERVER_HOST", "127.0.0.1"),
        os.environ.get("AIRFLOW_API_SERVER_PORT", "8080"),
    )
    url = f"http://{host}:{port}"
    try:
        healthy = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        healthy = False
    if not healthy:
        message = f"the stack's Airflow does not answer on {url}; {STACK_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url, os.environ.get("AIRFLOW_ADMIN_USER", "admin"), os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin")


def _dag_list(b) -> dict[str, tuple[str, str]]:
    """The DAG list's table view: DAG id -> (its pause switch's state, its latest run's state)."""
    return {
        row["dag_display_name"]["text"]: (row["is_paused"]["switch"], row["last_run_start_date"]["badge"] or "no run")
        for row in b.table_rows()
        if {"dag_display_name", "is_paused", "last_run_start_date"} <= row.keys()
    }


def _successful_scheduled_runs(b) -> list[str]:
    """Run ids in a DAG's Runs tab whose state is Success and run type Scheduled."""
    return [
        row["dag_run_id"]["text"]
        for row in b.table_rows()
        if {"dag_run_id", "state", "run_type"} <= row.keys()
        and (row["state"]["text"], row["run_type"]["text"]) == ("Success", "Scheduled")
    ]


def test_dag_list_shows_the_operational_dags_active_with_successful_scheduled_runs(chromium, stack_airflow, browser):
    url, user, password = stack_airflow
    b = browser(url)
    b.login(user, password)

    b.open("/dags")
    b.click('button[aria-label="Show table view"]', "the DAG list's table view button")
    dags = b.wait(
        lambda d: (listed := _dag_list(b)) and all(dag in listed for dag in ACTIVE_DAGS) and listed,
        f"the DAG list showing {', '.join(ACTIVE_DAGS)}",
    )
    paused = [dag for dag in ACTIVE_DAGS if dags[dag][0] != "checked"]
    assert not paused, f"paused in the DAG list (their switch is off): {paused}\n{b.diagnostics('paused')}"

    # Each DAG's Runs tab, filtered to successful scheduled runs, reloaded until one shows.
    deadline = time.monotonic() + SCHEDULED_RUN_WAIT_S
    for dag in OPERATIONAL_DAGS:
        b.open(f"/dags/{dag}/runs?state=success&run_type=scheduled")
        loaded = [time.monotonic()]

        def shown(driver, loaded=loaded):
            if runs := _successful_scheduled_runs(b):
                return runs
            if time.monotonic() - loaded[0] >= RELOAD_S:  # none yet: ask the server again
                driver.refresh()
                loaded[0] = time.monotonic()
            return None

        b.wait(
            shown,
            f"a successful scheduled run of {dag} in its Runs tab (its latest run in the DAG list: "
            f"{dags[dag][1]}; the stack's scheduler runs it on its schedule, a failed run's log says why)",
            timeout=max(deadline - time.monotonic(), 30),
            poll=1,
        )

    b.open("/dags")
    b.click('button[aria-label="Show table view"]', "the DAG list's table view button")
    b.wait(
        lambda d: (
            (listed := _dag_list(b)) and all(dag in listed and listed[dag][1] != "no run" for dag in OPERATIONAL_DAGS)
        ),
        "the DAG list again, with the latest runs",
    )
    b.screenshot("ui-dag-list.png")


# --------------------------------------------------------------------------- the tests' Airflow, writing


def _day_truth(env, day: str) -> tuple[int, int]:
    """(cities, valid orders) on `day` in MariaDB: the rows and the order_count total the day's
    dws.dws_city_daily partition must hold."""
    start = datetime.fromisoformat(day)
    cities, orders = env.mysql.get_first(
        f"SELECT COUNT(DISTINCT o.city), COUNT(*) FROM orders o WHERE {valid_orders()} "
        "AND o.created_at >= %s AND o.created_at < %s",
        (start, start + timedelta(days=1)),
    )
    return int(cities), int(orders)


@pytest.fixture(scope="module")
def loaded_day(it_env):
    """Orders on DAY streamed through the session's order pipeline into DWS, which equals MariaDB."""
    env = it_env
    start_order_pipeline(env)
    LoadGenerator(env.mysql, rate=100, seed=110, clock=backdated_clock(DAY)).run(duration_s=5)
    wait_dws_equals_truth(env)
    cities, orders = _day_truth(env, DAY)
    assert cities and orders, f"no valid orders on {DAY} in MariaDB"
    return env


def _overwrites_after(env, before: int) -> list[int]:
    return [
        s.snapshot_id
        for s in env.paimon.list_snapshots(TABLE)
        if s.snapshot_id > before and s.commit_kind == "OVERWRITE"
    ]


def _type_over(element, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(value)


def _fill_in_trigger_form(b, day: str) -> None:
    """The t1_backfill Trigger form: one table, one day, writes (dry run off), one day at a time.
    Fields are found by their param's name; any other field keeps its default."""
    _type_over(b.element("textarea[name=element_tables]", "the Tables field of the trigger form"), TABLE)
    year, month, dom = day.split("-")
    for name in ("element_start_date", "element_end_date"):
        b.element(f"input[name={name}]", f"the {name} field").send_keys(month + dom + year)  # MM/DD/YYYY
    values = {
        name: b.elements(f"[name={name}]")[0].get_property("value")
        for name in ("element_tables", "element_start_date", "element_end_date", "element_parallel_days")
    }
    assert values == {
        "element_tables": TABLE,
        "element_start_date": day,
        "element_end_date": day,
        "element_parallel_days": "1",
    }, f"the form holds {values}\n{b.diagnostics('form')}"
    dry_run = b.elements("input[name=element_dry_run]")
    assert dry_run and not dry_run[0].is_selected(), f"Dry run is not off\n{b.diagnostics('form')}"


def _approval_report(b) -> list[list[str]]:
    """The rows of the dry-run report table on the approval's page."""
    return [
        [cell.text.strip() for cell in b.elements("td", within=row)]
        for row in b.elements("[data-part=item-content] table tbody tr")
    ]


def test_backfill_from_the_trigger_form_is_approved_in_the_ui_and_rebuilds_the_day(
    chromium, airflow_api, loaded_day, browser
):
    api: Airflow = airflow_api
    env = loaded_day
    cities, orders = _day_truth(env, DAY)
    latest = env.paimon.latest_snapshot(TABLE)
    before = latest.snapshot_id if latest else 0

    b = browser(api.url)
    b.login(api.user, api.password)

    # 1. The Trigger form, filled in and submitted: the UI opens the new run.
    b.open(f"/dags/{DAG_ID}")
    b.click("[data-testid=trigger-dag-button]", "the Trigger button of t1_backfill")
    _fill_in_trigger_form(b, DAY)
    b.driver.execute_script("document.activeElement.blur()")  # no cursor in the screenshot
    b.screenshot("ui-backfill-form.png")
    b.click("[data-testid=trigger-dag-submit]", "the form's Trigger button")
    match = b.wait(
        lambda d: re.search(rf"/dags/{DAG_ID}/runs/([^/?#]+)", d.current_url), "the new run's page after Trigger"
    )
    run_id = unquote(match.group(1))
    run = api.get(api.run_path(run_id)).json()
    assert run["triggered_by"] == "ui", run  # the form, not the REST API
    conf = run["conf"]
    assert {k: conf.get(k) for k in ("tables", "start_date", "end_date", "dry_run", "parallel_days")} == {
        "tables": [TABLE],
        "start_date": DAY,
        "end_date": DAY,
        "dry_run": False,
        "parallel_days": 1,
    }, conf

    # 2. Required Actions lists the gate once the preview has run; its page shows the dry-run report.
    href = f"/dags/{DAG_ID}/runs/{run_id}/tasks/approve_writes/required_actions"
    b.open("/required_actions")

    def approval_listed(driver):
        if links := b.elements(f'a[href="{href}"]'):
            return links[0]
        state = api.get(api.run_path(run_id)).json()["state"]
        if state not in ("queued", "running"):
            pytest.fail(f"run {run_id} ended {state} before asking for approval\n{api.diagnostics(run_id)}")
        driver.refresh()
        return None

    b.wait(approval_listed, f"run {run_id} in Required Actions", timeout=APPROVAL_WAIT_S, poll=5).click()
    b.element("[data-testid=hitl-option-Approve]", "the Approve button", clickable=True)
    report = b.wait(lambda d: _approval_report(b), "the dry-run report on the approval's page")
    assert len(report) == 1 and report[0][:3] == [DAY, TABLE, str(cities)], (
        f"the approval's report {report}: expected {DAY} {TABLE} with {cities} rows now\n{b.diagnostics('report')}"
    )
    assert f"'order_count': {orders}" in report[0][3], report
    assert f"Overwrite 1 partitions: 1 tables x 1 days ({DAY})" in b.text(), b.diagnostics("subject")
    assert _overwrites_after(env, before) == [], "the day was overwritten before the approval"
    b.screenshot("ui-approval.png")

    b.click("[data-testid=hitl-option-Approve]", "the Approve button")
    hitl = f"{api.run_path(run_id)}/taskInstances/approve_writes/-1/hitlDetails"
    answer = b.wait(lambda d: (r := api.get(hitl).json())["response_received"] and r, "the approval recorded", poll=1)
    assert answer["chosen_options"] == ["Approve"] and answer["responded_by_user"]["name"] == api.user, answer

    # 3. The run goes on to success; its page says so and names the lane by its day.
    run = api.wait_run(run_id)
    assert run["state"] == "success", api.diagnostics(run_id)
    b.open(f"/dags/{DAG_ID}/runs/{run_id}")
    b.wait(
        lambda d: [e for e in b.elements("[data-testid=header-card] [data-testid=state-badge]") if e.text == "Success"],
        "the run's page showing Success",
    )

    def lane_row(driver):
        return [
            row
            for row in b.table_rows()
            if [row.get(c, {}).get("text") for c in ("task_display_name", "rendered_map_index", "state")]
            == ["backfill_lane", DAY, "Success"]
        ]

    b.wait(lane_row, f"the task instance backfill_lane [{DAY}] shown Success")
    b.screenshot("ui-backfill-success.png")

    # 4. In the warehouse: one OVERWRITE of that day alone, and the table equals MariaDB.
    overwrites = _overwrites_after(env, before)
    assert len(overwrites) == 1, overwrites
    assert days_written(env, TABLE, overwrites[0]) == {DAY}
    r = api.get(f"{api.run_path(run_id)}/taskInstances/report/xcomEntries/return_value")
    assert r.status_code == 200, r.text
    value = r.json()["value"]
    rows = json.loads(value) if isinstance(value, str) else value
    assert [(row["table"], row["dt"], row["dry_run"], row["overwrite_snapshot_id"]) for row in rows] == [
        (TABLE, DAY, False, overwrites[0])
    ], rows
    assert rows[0]["after"]["rows"] == cities and rows[0]["after"]["totals"]["order_count"] == orders, rows
    diff = compare_dws(TABLE, mysql=env.mysql, paimon=env.paimon)
    assert diff.equal, diff.summary()
