"""Flink Kubernetes Operator manifests rendered from the registry (lakehouse.streaming.kubernetes).

Every manifest is validated against the operator's own CRD schema: the openAPIV3Schema of the
FlinkDeployment / FlinkSessionJob CRDs in the operator's api jar from Maven Central
(flink/k8s-crds/pom.xml, fetched once into tests/.cache/k8s-crds). The schema is also checked
closed (no field it does not declare), because the API server silently prunes unknown fields of
a structural schema: a typo such as `resources` for `resource` would be dropped, not refused.
Without Maven or Maven Central these tests skip, except in CI (CI=true), where they fail.

No Kubernetes cluster is involved: the provider's operator is exercised against a fake client.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from lakehouse.core.registry import Registry, registry
from lakehouse.hooks.mysql import MySqlHook
from lakehouse.hooks.paimon import PaimonHook
from lakehouse.streaming.deploy import job_session_config, job_sql_hash, render_job
from lakehouse.streaming.kubernetes import manifests as k8s
from lakehouse.streaming.kubernetes import settings as k8s_settings

REPO = Path(__file__).resolve().parents[3]
CRD_POM = REPO / "flink" / "k8s-crds" / "pom.xml"
SQL_RUNNER_DIR = REPO / "flink" / "sql-runner"
CACHE = REPO / "tests" / ".cache" / "k8s-crds"
DOC = REPO / "docs" / "KUBERNETES.md"
POM_NS = "{http://maven.apache.org/POM/4.0.0}"

PAIMON_CONN, CDC_CONN = "paimon_k8s_ut", "mysql_k8s_ut"
CDC_PASSWORD = "cdc-Secret-42"
JOBS = sorted(registry().jobs)
MODES = {
    "application": {},
    "session": {
        "LAKEHOUSE_K8S_MODE": "session",
        "LAKEHOUSE_K8S_SQL_RUNNER_JAR": "s3://lakehouse/flink/jars/sql-runner.jar",
    },
}


# ---------------------------------------------------------------------------------------------
# The operator's CRDs, from Maven Central
# ---------------------------------------------------------------------------------------------
def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the CRD checks must run in CI, which has Maven and the network)")
    pytest.skip(reason)


def _maven(args: list[str], what: str) -> None:
    """Run Maven; a network problem skips (fails in CI), a wrong coordinate or build error fails."""
    mvn = shutil.which("mvn")
    if mvn is None:
        _unavailable(f"Maven (mvn) is not installed: cannot fetch {what}")
    try:
        out = subprocess.run([mvn, "-q", "-B", *args], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        _unavailable(f"Maven did not finish fetching {what} within 10 minutes")
    if out.returncode != 0:
        log = (out.stdout + out.stderr)[-3000:]
        if re.search(r"Could not find artifact|COMPILATION ERROR|Non-resolvable", log):
            pytest.fail(f"Maven failed on {what}:\n{log}")
        _unavailable(f"Maven could not fetch {what} (Maven Central unreachable?):\n{log}")


def _pom_property(pom: Path, name: str) -> str:
    return ET.parse(pom).getroot().find(f"{POM_NS}properties/{POM_NS}{name}").text.strip()


@pytest.fixture(scope="module")
def operator_api_jar() -> Path:
    version = _pom_property(CRD_POM, "flink-kubernetes-operator.version")
    jar = CACHE / f"flink-kubernetes-operator-api-{version}.jar"
    if not jar.is_file():
        _maven(
            ["-f", str(CRD_POM), "dependency:copy-dependencies", f"-DoutputDirectory={CACHE}"],
            f"flink-kubernetes-operator-api {version}",
        )
    assert jar.is_file(), f"Maven ran but {jar} is missing"
    return jar


def _crd_schema(jar: Path, plural: str) -> dict:
    with zipfile.ZipFile(jar) as zf:
        crd = yaml.safe_load(zf.read(f"META-INF/fabric8/{plural}.flink.apache.org-v1.yml"))
    assert crd["spec"]["group"] == k8s_settings.API_GROUP
    version = next(v for v in crd["spec"]["versions"] if v["name"] == k8s_settings.API_VERSION)
    assert version["served"] and version["storage"], (
        f"{plural} {k8s_settings.API_VERSION} is not the served storage version"
    )
    schema = version["schema"]["openAPIV3Schema"]
    # The API server gives every custom resource these; the generated schema leaves them out.
    implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    return {
        **schema,
        "properties": {**implicit, **schema["properties"]},
        "required": ["apiVersion", "kind", "metadata"],
    }


def _closed(schema):
    """The schema with every declared object closed: what the API server would prune becomes an error."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    return schema


@pytest.fixture(scope="module")
def validators(operator_api_jar):
    from jsonschema import Draft7Validator

    out = {}
    for kind, plural in k8s_settings.PLURALS.items():
        schema = _closed(_crd_schema(operator_api_jar, plural))
        Draft7Validator.check_schema(schema)
        out[kind] = Draft7Validator(schema)
    return out


def _schema_errors(validators, manifest: dict) -> list[str]:
    errors = sorted(validators[manifest["kind"]].iter_errors(manifest), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def _check_metadata(manifest: dict, settings: k8s_settings.KubernetesSettings) -> None:
    """The CRD schema leaves metadata open; these are the API server's own rules for it."""
    meta = manifest["metadata"]
    assert re.fullmatch(r"[a-z]([-a-z\d]{0,43}[a-z\d])?", meta["name"]), meta["name"]  # the operator's own pattern
    assert meta["namespace"] == settings.namespace
    for key, value in meta["labels"].items():
        assert re.fullmatch(r"([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", key), key
        assert len(value) <= 63 and re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?", value), (key, value)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def hooks(monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{PAIMON_CONN.upper()}",
        json.dumps({"conn_type": "paimon", "extra": {"warehouse": "s3://lakehouse/warehouse"}}),
    )
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CDC_CONN.upper()}",
        f"mysql://flink_cdc:{CDC_PASSWORD}@mysql.lakehouse.svc:3306/delivery?server_id_base=5400",
    )
    monkeypatch.delenv("LAKEHOUSE_PIPELINE_PREFIX", raising=False)
    return {"paimon": PaimonHook(PAIMON_CONN), "cdc": MySqlHook(CDC_CONN)}


def _settings(mode: str) -> k8s_settings.KubernetesSettings:
    return k8s_settings.KubernetesSettings.from_env(MODES[mode])


def _rendered(job: str, hooks, **kwargs) -> k8s.RenderedJob:
    return k8s.render_streaming_job(job, **hooks, **kwargs)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("job", JOBS)
def test_every_registered_job_renders_a_valid_resource(validators, hooks, job, mode):
    settings = _settings(mode)
    manifest = k8s.job_manifest(_rendered(job, hooks), settings)
    assert manifest["kind"] == {"application": "FlinkDeployment", "session": "FlinkSessionJob"}[mode]
    assert manifest["apiVersion"] == "flink.apache.org/v1beta1"
    assert _schema_errors(validators, manifest) == []
    _check_metadata(manifest, settings)
    assert manifest["metadata"]["labels"]["lakehouse/job"] == job
    assert yaml.safe_load(k8s.manifest_yaml(manifest)) == manifest, "the YAML given to the operator differs"


def test_session_cluster_is_a_valid_flink_deployment_without_job(validators):
    settings = _settings("session")
    manifest = k8s.session_cluster_manifest(settings)
    assert _schema_errors(validators, manifest) == []
    _check_metadata(manifest, settings)
    assert manifest["metadata"]["name"] == settings.session_cluster
    assert "job" not in manifest["spec"]


def _memory_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(m|mb|g|gb)", text.lower())
    return int(m.group(1)) * (1 << (20 if m.group(2).startswith("m") else 30))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_manifests_pass_the_operators_own_validation_rules(hooks, mode):
    """What the operator's DefaultValidator (1.10) refuses beyond the schema, for a first deploy."""
    settings = _settings(mode)
    cluster = k8s.session_cluster_manifest(settings) if mode == "session" else None
    for job in JOBS:
        manifest = k8s.job_manifest(_rendered(job, hooks), settings)
        deployment = cluster or manifest  # the cluster whose configuration the job is checked against
        conf = deployment["spec"]["flinkConfiguration"]
        forbidden = {"kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id"}
        assert not forbidden & set(conf) and not forbidden & set(manifest["spec"]["flinkConfiguration"])
        assert deployment["spec"]["flinkVersion"] and deployment["spec"]["serviceAccount"]
        assert conf.get("state.checkpoints.dir"), "savepoint upgrade mode needs a checkpoint directory"
        assert conf.get("state.savepoints.dir"), "savepoint upgrade mode needs a savepoint directory"
        assert manifest["spec"]["job"]["state"] == "running", "a job must start in running state"
        assert manifest["spec"]["job"]["parallelism"] >= 1
        for role in ("jobManager", "taskManager"):
            assert _memory_bytes(deployment["spec"][role]["resource"]["memory"]) > 0
        assert deployment["spec"]["jobManager"]["replicas"] == 1
        if mode == "session":
            assert manifest["spec"]["deploymentName"] == cluster["metadata"]["name"]
            assert "job" not in cluster["spec"], "session jobs cannot run on an application cluster"


def test_render_manifests_covers_the_registry(hooks):
    application = k8s.render_manifests(_settings("application"), **hooks)
    session = k8s.render_manifests(_settings("session"), **hooks)
    assert [m["metadata"]["labels"]["lakehouse/job"] for m in application] == list(registry().jobs)
    assert [m["kind"] for m in session] == ["FlinkDeployment"] + ["FlinkSessionJob"] * len(registry().jobs)
    names = [m["metadata"]["name"] for m in application]
    assert len(set(names)) == len(names)


def test_the_schema_check_catches_what_the_api_server_would_drop_or_refuse(validators, hooks):
    """The checks bite: a pruned typo, a number where the CRD wants a string, an unknown upgrade mode."""
    good = k8s.job_manifest(_rendered("dwd_order_fact", hooks), _settings("application"))
    typo = copy.deepcopy(good)
    typo["spec"]["taskManager"]["resources"] = typo["spec"]["taskManager"].pop("resource")
    number = copy.deepcopy(good)
    number["spec"]["flinkConfiguration"]["taskmanager.numberOfTaskSlots"] = 2
    mode = copy.deepcopy(good)
    mode["spec"]["job"]["upgradeMode"] = "savepoint-only"
    assert any("resources" in e for e in _schema_errors(validators, typo))
    assert any("flinkConfiguration.taskmanager.numberOfTaskSlots" in e for e in _schema_errors(validators, number))
    assert any("job.upgradeMode" in e for e in _schema_errors(validators, mode))


# ---------------------------------------------------------------------------------------------
# What the manifests say
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", sorted(MODES))
def test_upgrades_use_savepoints_and_jobs_run(hooks, mode):
    settings = _settings(mode)
    for job in JOBS:
        manifest = k8s.job_manifest(_rendered(job, hooks), settings)
        spec = manifest["spec"]
        assert spec["job"]["upgradeMode"] == "savepoint"
        assert spec["job"]["state"] == "running"
        # As the session path's upgrades: CDC and DWD replays would be counted twice downstream.
        assert spec["job"]["allowNonRestoredState"] is (job not in ("ods_delivery_cdc", "dwd_order_fact"))
        # The operator refuses savepoint upgrades without a savepoint directory.
        assert spec["flinkConfiguration"]["state.savepoints.dir"] == settings.savepoint_dir
        assert spec["job"]["entryClass"] == k8s_settings.SQL_RUNNER_ENTRY_CLASS
        assert spec["job"]["jarURI"] == settings.sql_runner_jar


def test_application_clusters_keep_state_on_shared_storage_with_kubernetes_ha(hooks):
    settings = _settings("application")
    spec = k8s.job_manifest(_rendered("ods_delivery_cdc", hooks), settings)["spec"]
    conf = spec["flinkConfiguration"]
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"] == settings.ha_dir
    assert conf["state.checkpoints.dir"] == settings.checkpoint_dir
    assert conf["state.backend.type"] == "rocksdb" and conf["state.backend.incremental"] == "true"
    assert all(v.startswith("s3://") for k, v in conf.items() if k.endswith(("dir", "storageDir")))
    assert spec["image"] == settings.image and spec["serviceAccount"] == settings.service_account
    assert spec["flinkVersion"] == "v1_20"
    assert spec["jobManager"]["resource"] == {"memory": "1600m", "cpu": 1.0}
    assert spec["taskManager"]["resource"] == {"memory": "4g", "cpu": 1.0}
    [container] = spec["podTemplate"]["spec"]["containers"]
    assert container["name"] == "flink-main-container"
    assert {"name": "ENABLE_BUILT_IN_PLUGINS", "value": "flink-s3-fs-hadoop-1.20.3.jar"} in container["env"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_parallelism_checkpoint_interval_and_state_ttl_come_from_the_registry(hooks, mode):
    settings = _settings(mode)
    for job in registry().jobs.values():
        spec = k8s.job_manifest(_rendered(job.name, hooks), settings)["spec"]
        conf = spec["flinkConfiguration"]
        assert spec["job"]["parallelism"] == job.parallelism
        assert conf["parallelism.default"] == str(job.parallelism)
        assert conf["execution.checkpointing.interval"] == job.checkpoint_interval
        assert conf.get("table.exec.state.ttl") == job.state_ttl
        assert conf["pipeline.name"] == job.name


def test_registry_changes_reach_the_manifest(hooks):
    """Parallelism and checkpoint interval are read from the registry, not defaults of this module."""
    reg = registry()
    changed = dataclasses.replace(reg.jobs["dws_city_daily"], parallelism=3, checkpoint_interval="30s", state_ttl="2h")
    custom = Registry(tables=reg.tables, jobs={**reg.jobs, "dws_city_daily": changed})
    spec = k8s.job_manifest(_rendered("dws_city_daily", hooks, reg=custom), _settings("application"))["spec"]
    assert spec["job"]["parallelism"] == 3
    assert spec["flinkConfiguration"]["execution.checkpointing.interval"] == "30s"
    assert spec["flinkConfiguration"]["table.exec.state.ttl"] == "2h"


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("job", JOBS)
def test_sql_and_settings_are_those_of_the_session_path(hooks, job, mode):
    spec = registry().job(job)
    manifest = k8s.job_manifest(_rendered(job, hooks), _settings(mode))
    assert k8s.decode_statements(manifest["spec"]["job"]["args"]) == render_job(spec, **hooks)
    conf = manifest["spec"]["flinkConfiguration"]
    assert {k: conf[k] for k in job_session_config(spec)} == job_session_config(spec)
    assert manifest["metadata"]["annotations"]["lakehouse/sql-hash"] == job_sql_hash(spec, **hooks)


def test_a_sql_change_changes_the_spec_so_the_operator_upgrades(hooks):
    """The operator upgrades (savepoint, restart) on a spec change: the SQL must be in the spec."""
    reg = registry()
    job = reg.jobs["ods_user_events"]
    faster = dataclasses.replace(job, vars={"events": {**job.vars["events"], "rows_per_second": 500}})
    custom = Registry(tables=reg.tables, jobs={**reg.jobs, "ods_user_events": faster})
    settings = _settings("application")
    before = k8s.job_manifest(_rendered("ods_user_events", hooks), settings)
    after = k8s.job_manifest(_rendered("ods_user_events", hooks, reg=custom), settings)
    assert before["spec"]["job"]["args"] != after["spec"]["job"]["args"]
    assert (
        before["metadata"]["annotations"]["lakehouse/sql-hash"]
        != after["metadata"]["annotations"]["lakehouse/sql-hash"]
    )
    again = k8s.job_manifest(_rendered("ods_user_events", hooks), settings)
    assert again == before, "rendering is not deterministic: every deploy would upgrade the job"


def test_runner_arguments_survive_what_the_flink_configuration_does_to_lists(hooks):
    """Statement sets hold ';' and line breaks; the runner's arguments hold neither."""
    args = k8s.job_manifest(_rendered("ods_delivery_cdc", hooks), _settings("application"))["spec"]["job"]["args"]
    statements = k8s.decode_statements(args)
    assert any(";" in s and "\n" in s for s in statements), "expected the CDC job's statement set"
    assert all(re.fullmatch(r"[A-Za-z0-9+/=]+", a) for a in args)


def test_pipeline_prefix_names_resources_and_pipelines(hooks, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_PIPELINE_PREFIX", "blue_")
    manifest = k8s.job_manifest(_rendered("dws_shop_hourly", hooks), _settings("application"))
    assert manifest["metadata"]["name"] == "blue-dws-shop-hourly"
    assert manifest["spec"]["flinkConfiguration"]["pipeline.name"] == "blue_dws_shop_hourly"


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
def test_defaults_need_no_environment():
    settings = k8s_settings.KubernetesSettings.from_env({})
    assert settings == k8s_settings.KubernetesSettings()
    assert (settings.mode, settings.namespace, settings.plural) == ("application", "lakehouse", "flinkdeployments")
    assert settings.checkpoint_dir.startswith("s3://")


def test_environment_overrides_with_types():
    settings = k8s_settings.KubernetesSettings.from_env(
        {
            "LAKEHOUSE_K8S_NAMESPACE": "streaming",
            "LAKEHOUSE_K8S_TASK_SLOTS": "4",
            "LAKEHOUSE_K8S_TASKMANAGER_CPU": "2.5",
            "LAKEHOUSE_K8S_CHECKPOINT_DIR": "s3://prod-bucket/flink/cp",
            "LAKEHOUSE_K8S_IMAGE": "registry.example/lakehouse/flink:42",
        }
    )
    assert (settings.namespace, settings.task_slots, settings.taskmanager_cpu) == ("streaming", 4, 2.5)
    assert settings.checkpoint_dir == "s3://prod-bucket/flink/cp" and settings.image.endswith(":42")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEHOUSE_K8S_MODE": "yarn"}, "LAKEHOUSE_K8S_MODE='yarn' must be one of application, session"),
        ({"LAKEHOUSE_K8S_TASK_SLOTS": "two"}, "LAKEHOUSE_K8S_TASK_SLOTS='two' is not a whole number"),
        ({"LAKEHOUSE_K8S_TASK_SLOTS": "0"}, "LAKEHOUSE_K8S_TASK_SLOTS=0 must be a whole number >= 1"),
        (
            {"LAKEHOUSE_K8S_CHECKPOINT_DIR": "/data/checkpoints"},
            "LAKEHOUSE_K8S_CHECKPOINT_DIR='/data/checkpoints' must be a URI on storage every pod shares",
        ),
        ({"LAKEHOUSE_K8S_SAVEPOINT_DIR": "s3://lakehouse/flink/checkpoints"}, "must be three different directories"),
        (
            {"LAKEHOUSE_K8S_NAMESPACE": "Lake_House"},
            "LAKEHOUSE_K8S_NAMESPACE='Lake_House' is not a Kubernetes namespace name",
        ),
        (
            {"LAKEHOUSE_K8S_TASKMANAGER_MEMORY": "4 GB"},
            "LAKEHOUSE_K8S_TASKMANAGER_MEMORY='4 GB' must be a Flink memory size",
        ),
        ({"LAKEHOUSE_K8S_MODE": "session"}, "in session mode the operator downloads the jar"),
        ({"LAKEHOUSE_K8S_IMAGE_PULL_POLICY": "sometimes"}, "must be Always, IfNotPresent or Never"),
    ],
)
def test_a_bad_setting_names_the_variable(env, message):
    with pytest.raises(k8s_settings.KubernetesConfigError) as exc:
        k8s_settings.KubernetesSettings.from_env(env)
    assert message in str(exc.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(k8s_settings.KubernetesConfigError) as exc:
        k8s_settings.KubernetesSettings.from_env(
            {
                "LAKEHOUSE_K8S_MODE": "yarn",
                "LAKEHOUSE_K8S_HA_DIR": "file:///ha",
                "LAKEHOUSE_K8S_STATE_BACKEND": "memory",
            }
        )
    text = str(exc.value)
    assert all(v in text for v in ("LAKEHOUSE_K8S_MODE", "LAKEHOUSE_K8S_HA_DIR", "LAKEHOUSE_K8S_STATE_BACKEND"))


def test_deployment_target():
    assert k8s_settings.deployment_target({}) == "session"
    assert k8s_settings.deployment_target({"LAKEHOUSE_DEPLOYMENT_TARGET": "kubernetes"}) == "kubernetes"
    with pytest.raises(
        k8s_settings.KubernetesConfigError, match="LAKEHOUSE_DEPLOYMENT_TARGET='k8s' must be one of session, kubernetes"
    ):
        k8s_settings.deployment_target({"LAKEHOUSE_DEPLOYMENT_TARGET": "k8s"})


def test_a_job_name_too_long_for_kubernetes_is_refused(hooks, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_PIPELINE_PREFIX", "a_very_long_deployment_prefix_")
    with pytest.raises(k8s_settings.KubernetesConfigError, match="at most 45 characters"):
        k8s.job_manifest(_rendered("dws_shop_traffic_hourly", hooks), _settings("application"))


def test_a_local_warehouse_is_refused(hooks, monkeypatch):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{PAIMON_CONN.upper()}",
        json.dumps({"conn_type": "paimon", "extra": {"warehouse": "/data/warehouse"}}),
    )
    with pytest.raises(
        k8s_settings.KubernetesConfigError, match=f"connection '{PAIMON_CONN}' is 'file:///data/warehouse'"
    ):
        k8s.render_streaming_job("dwd_order_fact", paimon=PaimonHook(PAIMON_CONN), cdc=hooks["cdc"])


def test_every_setting_is_documented_with_its_default():
    text = DOC.read_text()
    for env, default, _ in k8s_settings.settings_reference():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{env}`")), None)
        assert row, f"docs/KUBERNETES.md has no row for {env}"
        assert f"`{default}`" in row, f"docs/KUBERNETES.md: the row of {env} does not show its default {default!r}"


# ---------------------------------------------------------------------------------------------
# Deploying with the provider's FlinkKubernetesOperator (fake Kubernetes client)
# ---------------------------------------------------------------------------------------------
class FakeCustomObjects:
    def __init__(self, existing: dict | None = None):
        self.objects = dict(existing or {})
        self.calls: list[tuple] = []

    def list_cluster_custom_object(self, group, version, plural):
        self.calls.append(("list", plural))
        return {"items": []}

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append(("get", plural, name))
        return self.objects[(plural, name)]

    def replace_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.calls.append(("replace", plural, name, body))
        self.objects[(plural, name)] = body
        return body


class FakeKubernetesHook:
    def __init__(self, objects: FakeCustomObjects):
        self.custom_object_client = objects

    def create_custom_object(self, group, version, plural, body, namespace=None):
        from kubernetes.client.exceptions import ApiException

        manifest = yaml.safe_load(body)
        key = (plural, manifest["metadata"]["name"])
        if key in self.custom_object_client.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.custom_object_client.calls.append(("create", plural, manifest["metadata"]["name"], manifest))
        self.custom_object_client.objects[key] = {
            **manifest,
            "metadata": {**manifest["metadata"], "resourceVersion": "1"},
        }
        return manifest


def _deploy_operator(objects: FakeCustomObjects, settings: k8s_settings.KubernetesSettings, monkeypatch, hooks):
    from lakehouse.streaming.kubernetes import operator as kubernetes_deploy

    monkeypatch.setattr(
        kubernetes_deploy, "render_streaming_job", lambda name, **_: k8s.render_streaming_job(name, **hooks)
    )
    op = kubernetes_deploy.FlinkJobResourceOperator(
        task_id="deploy_dwd_order_fact", job_name="dwd_order_fact", settings=settings
    )
    op.__dict__["hook"] = FakeKubernetesHook(objects)  # the provider's cached_property
    return op


def test_the_provider_operator_creates_the_resource(monkeypatch, hooks):
    settings = _settings("application")
    objects = FakeCustomObjects()
    op = _deploy_operator(objects, settings, monkeypatch, hooks)
    result = op.execute(context={})
    [create] = [c for c in objects.calls if c[0] == "create"]
    assert create[1] == "flinkdeployments" and create[2] == "dwd-order-fact"
    assert create[3] == k8s.job_manifest(_rendered("dwd_order_fact", hooks), settings)
    assert result == {
        "kind": "FlinkDeployment",
        "name": "dwd-order-fact",
        "namespace": "lakehouse",
        "action": "created",
        "sql_hash": create[3]["metadata"]["annotations"]["lakehouse/sql-hash"],
    }
    assert CDC_PASSWORD not in json.dumps(result)


def test_the_runner_arguments_are_masked_in_task_logs(monkeypatch, hooks):
    """The provider logs the body it creates; Airflow masks the password, not its Base64."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    op = _deploy_operator(FakeCustomObjects(), _settings("application"), monkeypatch, hooks)
    op.execute(context={})
    args = yaml.safe_load(op.application_file)["spec"]["job"]["args"]
    redacted = _secrets_masker().redact(op.application_file)
    assert args and not any(arg in redacted for arg in args)


def test_an_existing_resource_gets_the_new_spec(monkeypatch, hooks):
    """Idempotent deploys; a changed spec is what makes the Flink operator take a savepoint and upgrade."""
    settings = _settings("application")
    objects = FakeCustomObjects()
    _deploy_operator(objects, settings, monkeypatch, hooks).execute(context={})
    result = _deploy_operator(objects, settings, monkeypatch, hooks).execute(context={})
    assert result["action"] == "replaced"
    [replace_call] = [c for c in objects.calls if c[0] == "replace"]
    body = replace_call[3]
    assert body["metadata"]["resourceVersion"] == "1"
    assert body["spec"] == k8s.job_manifest(_rendered("dwd_order_fact", hooks), settings)["spec"]


def test_the_manifest_is_no_jinja_template():
    from lakehouse.streaming.kubernetes.operator import FlinkJobResourceOperator

    assert "application_file" not in FlinkJobResourceOperator.template_fields


# ---------------------------------------------------------------------------------------------
# The deploy DAG on the kubernetes target
# ---------------------------------------------------------------------------------------------
_PARSE = r"""
import json, os, socket, sys
def no_network(self, address):
    raise AssertionError(f"DAG parsing opened a network connection to {address}")
socket.socket.connect = no_network
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get("streaming_deploy")
print("RESULT=" + json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: [type(t).__name__, sorted(t.upstream_task_ids)] for t in dag.tasks} if dag else {},
    "loaded": [m for m in ("pypaimon", "pyarrow", "pandas", "pymysql", "great_expectations") if m in sys.modules],
}))
"""


def _parse_deploy_dag(env: dict) -> dict:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW_CONN_", "LAKEHOUSE_K8S_", "LAKEHOUSE_DEPLOYMENT"))
    }
    base["PYTHONPATH"] = str(REPO / "plugins")
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, str(REPO / "dags" / "streaming_deploy.py")],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [line] = [x for x in out.stdout.splitlines() if x.startswith("RESULT=")]
    return json.loads(line[len("RESULT=") :])


@pytest.mark.parametrize("mode", sorted(MODES))
def test_kubernetes_target_parses_without_cluster_or_connections(mode):
    """Parse time builds FlinkKubernetesOperator tasks without contacting Kubernetes or reading a connection."""
    result = _parse_deploy_dag({"LAKEHOUSE_DEPLOYMENT_TARGET": "kubernetes", **MODES[mode]})
    assert result["errors"] == {}
    tasks = result["tasks"]
    assert result["loaded"] == []
    for job in JOBS:
        kind, upstream = tasks[f"deploy_{job}"]
        assert kind == "FlinkJobResourceOperator"
        assert upstream == (["deploy_session_cluster"] if mode == "session" else ["create_tables"])
    if mode == "session":
        assert tasks["deploy_session_cluster"] == ["FlinkSessionClusterOperator", ["create_tables"]]


def test_a_bad_kubernetes_setting_fails_the_parse_with_its_name():
    result = _parse_deploy_dag({"LAKEHOUSE_DEPLOYMENT_TARGET": "kubernetes", "LAKEHOUSE_K8S_MODE": "yarn"})
    [error] = result["errors"].values()
    assert "LAKEHOUSE_K8S_MODE='yarn'" in error


# ---------------------------------------------------------------------------------------------
# The SQL runner the manifests name
# ---------------------------------------------------------------------------------------------
def test_the_sql_runner_compiles_with_the_entry_class_the_manifests_name(tmp_path):
    work = tmp_path / "sql-runner"
    shutil.copytree(SQL_RUNNER_DIR, work, ignore=shutil.ignore_patterns("target"))
    _maven(["-f", str(work / "pom.xml"), "package"], "the SQL runner's Flink dependencies")
    with zipfile.ZipFile(work / "target" / "sql-runner.jar") as jar:
        assert k8s_settings.SQL_RUNNER_ENTRY_CLASS.replace(".", "/") + ".class" in jar.namelist()
        assert f"Main-Class: {k8s_settings.SQL_RUNNER_ENTRY_CLASS}" in jar.read("META-INF/MANIFEST.MF").decode()
    assert k8s_settings.KubernetesSettings().sql_runner_jar.endswith("/" + "sql-runner.jar")
