"""The pure parts of the soak benchmark (bench/_soak.py): telling this stack's processes apart, counting
CPU by role without losing short task processes or counting them twice, heartbeat gaps, the dag-processor's
parse times, and the summaries (within-SLA share, final states, busy against idle, the bounds)."""

from datetime import UTC, datetime

import pytest

from _soak import (
    CpuAccount,
    Proc,
    StackIds,
    busy_idle,
    classify,
    control_share_at,
    dag_check_samples,
    distribution,
    expiry_period_s,
    files_per_bucket,
    heartbeat_gaps,
    interval_shares,
    no_worse,
    parse_processing_stats,
    snapshot_bound,
    tally_states,
    within_sla,
    writer_file_bound,
)

HOME = "/repo/.stack"
IDS = StackIds(
    home=HOME,
    flink_conf=f"{HOME}/flink/conf",
    airflow_sessions=frozenset({100, 200}),
    postmaster=300,
    bench_pid=400,
    load_pid=500,
)


def role(args, *, pid=9999, sid=None, ancestors=()):
    return classify(args, pid=pid, sid=sid, ancestors=tuple(ancestors), ids=IDS)


# ------------------------------------------------------------------ classification
def test_this_stacks_airflow_is_told_by_its_services_sessions_not_by_its_command_line():
    assert role(["airflow", "api_server", "--", "host:127.0.0.1", "port:8080"], pid=100, sid=100) == "airflow"
    # a task process of the scheduler (forked, same session), and a task's own child
    assert role(["airflow", "worker", "--", "01a2-uuid"], pid=1234, sid=200, ancestors=[200, 1]) == "airflow"
    assert role(["/venv/bin/python", "-c", "from multiprocessing.spawn import spawn_main"], sid=200) == "airflow"
    # another Airflow (an integration test's own services) looks the same but is not the stack's
    assert role(["airflow", "api_server", "--", "host:127.0.0.1", "port:45007"], pid=777, sid=777) == "other"


def test_postgres_is_the_stacks_postmaster_and_its_backends_whatever_their_session():
    assert role(["/usr/lib/postgresql/15/bin/postgres", "-D", f"{HOME}/postgres"], pid=300, sid=300) == "postgres"
    assert role(["postgres: airflow airflow 127.0.0.1(50190) idle"], pid=301, sid=301, ancestors=[300, 1]) == "postgres"
    assert role(["postgres: checkpointer"], pid=901, sid=901, ancestors=[900, 1]) == "other"  # the system's Postgres


def test_flink_and_mariadb_of_this_stack_are_the_data_plane():
    tm = [
        "java",
        "-Xmx1g",
        "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
        "--configDir",
        f"{HOME}/flink/conf",
    ]
    jm = [
        "java",
        f"-Dlakehouse.home={HOME}",
        "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
    ]
    gw = ["java", f"-Dlakehouse.home={HOME}", "org.apache.flink.table.gateway.SqlGateway"]
    assert role(tm) == "flink_taskmanager"
    assert role(jm) == "flink_jobmanager"
    assert role(gw) == "sql_gateway"
    other_tm = ["java", "org.apache.flink.runtime.taskexecutor.TaskManagerRunner", "--configDir", "/elsewhere/conf"]
    assert role(other_tm) == "other"
    assert role(["mariadbd", f"--defaults-file={HOME}/mariadb.cnf", "--user=root"]) == "mariadb"
    assert role(["/usr/sbin/mariadbd", "--defaults-file=/tmp/test/mariadb.cnf"]) == "other"


def test_the_load_process_and_its_workers_are_load_and_the_rest_of_the_bench_is_bench():
    assert role(["python", "-c", "spawn_main"], pid=500, ancestors=[400]) == "load"
    assert role(["loadgen-writer-0"], pid=501, ancestors=[500, 400]) == "load"
    assert role(["python", "bench/soak.py"], pid=400) == "bench"
    assert role(["python", "-c", "resource_tracker"], pid=402, ancestors=[400]) == "bench"


def test_discover_reads_the_service_pid_files_and_the_postmaster(tmp_path, monkeypatch):
    run = tmp_path / "airflow" / "run"
    run.mkdir(parents=True)
    (run / "scheduler.pid").write_text("31396\n")
    (run / "api-server.pid").write_text("31393")
    (run / "junk.pid").write_text("not a pid")
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "postmaster.pid").write_text("31161\n/repo/.stack/postgres\n")
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("POSTGRES_DATA", str(tmp_path / "postgres"))
    ids = StackIds.discover(load_pid=42)
    assert ids.airflow_sessions == {31396, 31393} and ids.postmaster == 31161 and ids.load_pid == 42


# ------------------------------------------------------------------ CPU accounting
def P(pid, cpu, component="airflow", ppid=1, created=1.0):
    return Proc(pid=pid, ppid=ppid, create_time=created, component=component, cpu_s=cpu)


def test_first_scan_is_the_baseline_then_deltas_per_component():
    account = CpuAccount()
    assert account.update([P(10, 5.0), P(20, 7.0, "mariadb")]) == {}
    assert account.update([P(10, 6.5), P(20, 7.25, "mariadb")]) == {"airflow": 1.5, "mariadb": 0.25}


def test_a_task_that_lives_and_dies_between_two_scans_counts_through_its_parents_children_time():
    account = CpuAccount()
    account.update([P(10, 1.0)])
    # the task (pid 11) ran 3 s and was reaped by its worker: the worker's children time grew by 3 s
    assert account.update([P(10, 1.0 + 0.5 + 3.0)]) == {"airflow": 3.5}


def test_a_child_seen_alive_is_not_counted_again_when_its_parent_reaps_it():
    account = CpuAccount()
    account.update([P(10, 1.0), P(11, 0.0, ppid=10, created=2.0)])
    assert account.update([P(10, 1.0), P(11, 2.0, ppid=10, created=2.0)]) == {"airflow": 2.0}
    # the child ran 0.5 s more, exited and was reaped: the parent's children time grows by its whole 2.5 s
    assert account.update([P(10, 1.0 + 2.5)]) == {"airflow": 0.5}


def test_a_new_process_counts_from_its_start_and_a_reused_pid_is_a_new_process():
    account = CpuAccount()
    account.update([P(10, 1.0)])
    assert account.update([P(10, 1.0), P(12, 0.75, "load", created=5.0)]) == {"airflow": 0.0, "load": 0.75}
    assert account.update([P(10, 1.0), P(12, 0.25, "load", created=9.0)])["load"] == 0.25


def test_interval_shares_are_of_the_whole_machine_and_other_takes_the_unclassified_busy_time():
    shares = interval_shares(
        {"seconds": 10.0, "cores": 2, "busy_s": 12.0, "components": {"airflow": 2.0, "postgres": 1.0, "mariadb": 4.0}}
    )
    assert shares["control_plane"] == pytest.approx(0.15)
    assert shares["data_plane"] == pytest.approx(0.2)
    assert shares["other"] == pytest.approx(0.25)  # 12 busy - 7 classified
    assert shares["machine"] == pytest.approx(0.6)
    # pid 1 reaping another run's daemons shows their whole lives as its children time: not the machine's
    orphans = interval_shares(
        {"seconds": 10.0, "cores": 2, "busy_s": 10.0, "components": {"airflow": 2.0, "other": 30.0}}
    )
    assert orphans["other"] == pytest.approx(0.4)
    assert sum(orphans[r] for r in ("control_plane", "data_plane", "load", "bench", "other")) == pytest.approx(0.5)


# ------------------------------------------------------------------ heartbeats and DAG parsing
def test_heartbeat_gaps_only_where_no_heartbeat_can_have_passed_unseen():
    obs = [(0.0, 100.0), (2.0, 100.0), (4.0, 105.0), (6.0, 105.0), (8.0, 111.5), (20.0, 130.0), (22.0, 135.0)]
    # 105-100 and 111.5-105 seen within 2 s; 130 after a 12 s blind spot (a heartbeat could have passed): left out
    assert heartbeat_gaps(obs) == [5.0, 6.5, 5.0]
    assert heartbeat_gaps([(0.0, 100.0), (2.0, None), (4.0, 106.0)]) == []  # the API did not answer in between


# The dag-processor's table, its padding narrowed to fit the line length (the parser splits on white space).
STATS = """2026-11-29T20:50:46.214212Z [info     ]
================================================================================
DAG File Processing Stats

Bundle       File Path                 PID    Current Duration  # DAGs  # Errors  Last Duration  Last Run At
-----------  ------------------------  -----  ----------------  ------  --------  -------------  -------------------
dags-folder  streaming_supervision.py                                1         0  1.04s          2026-11-29T20:50:21
dags-folder  t1_daily.py               4396   0.50s                  1         0  0.80s          2026-11-29T20:50:23
dags-folder  streaming_deploy.py         943  0.05s                  0         0
dags-folder  streaming_operations.py                                 0         0
================================================================================
DAG File Processing Stats
dags-folder  streaming_supervision.py                                1         0  1.04s          2026-11-29T20:50:21
dags-folder  streaming_supervision.py                                1         0  0.90s          2026-11-29T20:50:52
"""


def test_each_parse_is_counted_once_and_files_never_parsed_are_left_out():
    parses = parse_processing_stats(STATS)
    at = datetime(2026, 11, 29, 20, 50, 21, tzinfo=UTC)
    assert parses == [
        ("streaming_supervision.py", 1.04, at),
        ("t1_daily.py", 0.80, datetime(2026, 11, 29, 20, 50, 23, tzinfo=UTC)),
        ("streaming_supervision.py", 0.90, datetime(2026, 11, 29, 20, 50, 52, tzinfo=UTC)),
    ]


# ------------------------------------------------------------------ summaries
def test_within_sla_share_counts_unknown_lags_as_misses_and_no_sla_as_nothing_to_meet():
    samples = [{"lag_s": v} for v in (0.0, 10.0, 119.9, 120.0, 121.0, None)]
    out = within_sla(samples, 120.0)
    assert out["samples"] == 6 and out["unknown"] == 1
    assert out["within_sla"] == pytest.approx(4 / 6)
    assert out["max"] == 121.0
    assert within_sla(samples, None)["within_sla"] is None
    assert within_sla([], 120.0)["within_sla"] is None


def test_distribution_uses_nearest_rank():
    d = distribution([float(i) for i in range(1, 101)])
    assert (d["n"], d["p50"], d["p95"], d["p99"], d["max"]) == (100, 50.0, 95.0, 99.0, 100.0)
    assert distribution([]) == {"n": 0}


def test_task_instances_by_final_state_and_the_rest_unfinished():
    tis = [{"state": s} for s in ("success", "success", "failed", "skipped", "running", None, "up_for_retry")]
    assert tally_states(tis) == {"failed": 1, "skipped": 1, "success": 2, "unfinished": 3}


def test_busy_and_idle_split_at_the_median_control_share_over_each_samples_window():
    intervals = [
        {"start": 0.0, "end": 10.0, "control": 0.05},
        {"start": 10.0, "end": 20.0, "control": 0.40},
        {"start": 20.0, "end": 30.0, "control": 0.10},
    ]
    assert control_share_at(intervals, 5.0, 15.0) == pytest.approx(0.225)
    assert control_share_at(intervals, 12.0, 12.0) == pytest.approx(0.40)  # a point in time
    assert control_share_at(intervals, 40.0, 50.0) is None
    split = busy_idle([(11.0, 19.0, 30.0), (1.0, 9.0, 10.0), (21.0, 29.0, 12.0)], intervals)
    assert split["median_control_share"] == pytest.approx(0.10)
    assert split["busy"]["n"] == 1 and split["busy"]["p50"] == 30.0
    assert split["idle"]["n"] == 2
    assert no_worse(split) is False
    assert no_worse({"busy": {"n": 1, "p50": 10.5, "p95": 20.0}, "idle": {"n": 3, "p50": 10.0, "p95": 19.0}}) is True
    assert no_worse({"busy": {"n": 0}, "idle": {"n": 3, "p50": 1, "p95": 1}}) is None


def test_snapshot_bound_is_retain_max_plus_the_commits_of_one_expiry_period():
    assert expiry_period_s("40 * * * *") == 3600.0
    assert expiry_period_s("*/15 * * * *") == 3600.0  # the maintenance DAG runs hourly
    assert expiry_period_s("10 3 * * *") == 86400.0
    # 1,440 commits in an hour (a 5 s checkpoint, APPEND + COMPACT) on top of retain_max 500
    assert snapshot_bound(500, 1440, 3600.0, 3600.0) == 1940
    assert snapshot_bound(500, 24, 180.0, 3600.0) == 980


def test_files_per_bucket_today_and_closed_days():
    today = "2026-11-29"
    files = [({"dt": today}, 0)] * 3 + [({"dt": today}, 1)] * 5 + [({"dt": "2026-11-28"}, 0)] * 2
    assert files_per_bucket(files, "dt", today) == (5, 2)
    assert files_per_bucket([({}, 0), ({}, 0)], None, today) == (2, 0)
    assert files_per_bucket([], "dt", today) == (0, 0)


def test_writer_file_bound_is_the_sorted_run_stop_trigger_of_primary_key_tables():
    assert writer_file_bound({}, True) == 8
    assert writer_file_bound({"num-sorted-run.compaction-trigger": "3"}, True) == 6
    assert writer_file_bound({"num-sorted-run.stop-trigger": "12"}, True) == 12
    assert writer_file_bound({"bucket": "-1"}, False) is None


def test_the_table_freshness_dags_checks_are_samples_too_and_a_failed_check_is_a_miss():
    start = datetime(2026, 11, 29, 21, 0, tzinfo=UTC).timestamp()
    run = "scheduled__2026-11-29T21:02:13+00:00"
    tis = [
        {"dag_id": "table_freshness", "dag_run_id": run, "task_id": "check_ods__ods_orders", "state": "success"},
        {
            "dag_id": "table_freshness",
            "dag_run_id": run,
            "task_id": "check_dws__dws_city_daily",
            "state": "failed",
            "end_date": "2026-11-29T21:03:00Z",
        },
        {"dag_id": "table_freshness", "dag_run_id": run, "task_id": "check_dwd__dwd_order_fact", "state": "skipped"},
        {"dag_id": "table_freshness", "dag_run_id": run, "task_id": "check_t1_published", "state": "success"},
        {"dag_id": "streaming_supervision", "dag_run_id": run, "task_id": "check_ods__ods_orders", "state": "failed"},
    ]
    events = [
        {
            "source_run_id": run,
            "source_task_id": "check_ods__ods_orders",
            "timestamp": "2026-11-29T21:02:30Z",
            "extra": {"lag_s": 3.5, "measure": "source"},
        }
    ]
    tables = {
        "ods.ods_orders": ("ods", 120.0),
        "dws.dws_city_daily": ("dws", 300.0),
        "dwd.dwd_order_fact": ("dwd", 180.0),
    }
    samples = dag_check_samples(tis, events, tables, start)
    assert [(s["table"], s["t"], s["lag_s"], s["source"]) for s in samples] == [
        ("ods.ods_orders", 150.0, 3.5, "dag"),
        ("dws.dws_city_daily", 180.0, None, "dag"),
    ]
    assert within_sla(samples[1:], 300.0)["within_sla"] == 0.0
