"""Flink Kubernetes Operator resources for the registered streaming jobs.

The Kubernetes path packages what the session-cluster path (lakehouse.streaming) submits through
the SQL Gateway: the same registry entry, the same rendered statements (`render_job`) and the same
job settings (`job_session_config`). Only the delivery differs:

- application mode (default): one `FlinkDeployment` per job; its JobManager runs the statements
  with the SQL runner (flink/sql-runner), the way the operator's flink-sql-runner-example does;
- session mode: one `FlinkSessionJob` per job, run by a shared session `FlinkDeployment`
  (`session_cluster_manifest`).

Every job has `upgradeMode: savepoint`: the SQL is part of the spec, so when it (or a setting)
changes the operator stops the job with a savepoint and starts the new spec from it.

Settings come from LAKEHOUSE_K8S_* environment variables (`KubernetesSettings.from_env`), read
without Airflow Variables or connections, so the deploy DAG can check them at parse time. This
module imports nothing heavy at module level: lakehouse.streaming (hooks) loads when a manifest
is rendered. Manifests are plain dicts, tested against the operator's CRD schema
(tests/unit/test_kubernetes_manifests.py); docs/KUBERNETES.md explains the mapping.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from lakehouse.registry import Registry, StreamingJobSpec, pipeline_prefix, registry

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook

API_GROUP = "flink.apache.org"
API_VERSION = "v1beta1"
FLINK_VERSION = "v1_20"  # the operator's name for Flink 1.20, the version of flink/pom.xml
SQL_RUNNER_ENTRY_CLASS = "lakehouse.flink.SqlRunner"  # flink/sql-runner
MAIN_CONTAINER = "flink-main-container"  # the operator's name for the Flink container in pod templates
PLURALS = {"FlinkDeployment": "flinkdeployments", "FlinkSessionJob": "flinksessionjobs"}

DEPLOYMENT_TARGET_ENV = "LAKEHOUSE_DEPLOYMENT_TARGET"
DEPLOYMENT_TARGETS = ("session", "kubernetes")
MODES = ("application", "session")

# The operator's validator: a FlinkDeployment name starts with a letter and has at most 45
# characters (services and HA ConfigMaps are derived from it).
MAX_RESOURCE_NAME = 45
_RESOURCE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# Shared storage every pod sees: a pod's own disk is gone when the operator replaces the pod.
_SHARED_STORAGE_URI = re.compile(r"^(s3|s3a|s3p|gs|oss|hdfs|abfs|abfss|wasbs)://[^\s/]+(/\S*)?$")
_JAR_URI = re.compile(r"^(local|file|https?|s3|s3a|s3p|gs|oss|hdfs|abfs|abfss|wasbs)://\S+\.jar$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(m|mb|g|gb)$", re.I)


class KubernetesConfigError(ValueError):
    """A LAKEHOUSE_K8S_* (or LAKEHOUSE_DEPLOYMENT_TARGET) value is invalid; the message names each one."""


def deployment_target(environ: Mapping[str, str] | None = None) -> str:
    """Where streaming_deploy sends the jobs (env LAKEHOUSE_DEPLOYMENT_TARGET): `session` (default,
    the SQL Gateway of a session cluster) or `kubernetes` (resources of the Flink Kubernetes Operator)."""
    environ = os.environ if environ is None else environ
    target = environ.get(DEPLOYMENT_TARGET_ENV, "").strip() or "session"
    if target not in DEPLOYMENT_TARGETS:
        raise KubernetesConfigError(f"{DEPLOYMENT_TARGET_ENV}={target!r} must be one of {', '.join(DEPLOYMENT_TARGETS)}")
    return target


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how the jobs run on Kubernetes. Every field has a LAKEHOUSE_K8S_* variable (see `from_env`)."""

    namespace: str = _setting("LAKEHOUSE_K8S_NAMESPACE", "lakehouse", "namespace of every resource")
    mode: str = _setting("LAKEHOUSE_K8S_MODE", "application",
                         "application (a FlinkDeployment per job) or session (FlinkSessionJobs on one session cluster)")
    image: str = _setting("LAKEHOUSE_K8S_IMAGE", "lakehouse/flink:1.20.3",
                          "the project's Flink image (docker/flink/Dockerfile): connector jars and the SQL runner")
    image_pull_policy: str = _setting("LAKEHOUSE_K8S_IMAGE_PULL_POLICY", "IfNotPresent", "Always, IfNotPresent or Never")
    service_account: str = _setting("LAKEHOUSE_K8S_SERVICE_ACCOUNT", "flink",
                                     "service account of the Flink pods (the operator's Helm chart creates `flink`)")
    checkpoint_dir: str = _setting("LAKEHOUSE_K8S_CHECKPOINT_DIR", "s3://lakehouse/flink/checkpoints",
                                   "state.checkpoints.dir, on storage every pod shares")
    savepoint_dir: str = _setting("LAKEHOUSE_K8S_SAVEPOINT_DIR", "s3://lakehouse/flink/savepoints",
                                  "state.savepoints.dir: where upgrades take their savepoints")
    ha_dir: str = _setting("LAKEHOUSE_K8S_HA_DIR", "s3://lakehouse/flink/ha",
                           "high-availability.storageDir (Kubernetes HA: JobManager metadata)")
    state_backend: str = _setting("LAKEHOUSE_K8S_STATE_BACKEND", "rocksdb", "rocksdb (incremental checkpoints) or hashmap")
    sql_runner_jar: str = _setting("LAKEHOUSE_K8S_SQL_RUNNER_JAR", "local:///opt/flink/usrlib/sql-runner.jar",
                                   "the SQL runner jar; session jobs need a URI the operator downloads (https://, s3://)")
    session_cluster: str = _setting("LAKEHOUSE_K8S_SESSION_CLUSTER", "lakehouse-session",
                                    "name of the session FlinkDeployment (session mode)")
    jobmanager_memory: str = _setting("LAKEHOUSE_K8S_JOBMANAGER_MEMORY", "1600m", "JobManager pod memory (Flink units: 1600m, 2g)")
    jobmanager_cpu: float = _setting("LAKEHOUSE_K8S_JOBMANAGER_CPU", 1.0, "JobManager pod CPUs")
    taskmanager_memory: str = _setting("LAKEHOUSE_K8S_TASKMANAGER_MEMORY", "4g", "TaskManager pod memory")
    taskmanager_cpu: float = _setting("LAKEHOUSE_K8S_TASKMANAGER_CPU", 1.0, "TaskManager pod CPUs")
    task_slots: int = _setting("LAKEHOUSE_K8S_TASK_SLOTS", 1,
                               "slots per TaskManager; a job gets ceil(parallelism / slots) TaskManagers")
    s3_plugin: str = _setting("LAKEHOUSE_K8S_S3_PLUGIN", "flink-s3-fs-hadoop-1.20.3.jar",
                              "Flink file system plugin the image enables (ENABLE_BUILT_IN_PLUGINS); empty for none")
    kubernetes_conn_id: str = _setting("LAKEHOUSE_K8S_CONN_ID", "kubernetes_default",
                                       "Airflow connection of the Kubernetes cluster (cncf.kubernetes provider)")

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise KubernetesConfigError("invalid Kubernetes settings:\n- " + "\n- ".join(problems))

    @staticmethod
    def env_name(name: str) -> str:
        return next(f.metadata["env"] for f in dataclasses.fields(KubernetesSettings) if f.name == name)

    def problems(self) -> list[str]:
        """Every invalid value at once, each with the variable that sets it."""
        e = self.env_name
        out = []
        if not _DNS_LABEL.match(self.namespace) or len(self.namespace) > 63:
            out.append(f"{e('namespace')}={self.namespace!r} is not a Kubernetes namespace name (lower case, digits, '-')")
        if self.mode not in MODES:
            out.append(f"{e('mode')}={self.mode!r} must be one of {', '.join(MODES)}")
        if not self.image or any(c.isspace() for c in self.image):
            out.append(f"{e('image')}={self.image!r} is not an image reference")
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            out.append(f"{e('image_pull_policy')}={self.image_pull_policy!r} must be Always, IfNotPresent or Never")
        if not _DNS_SUBDOMAIN.match(self.service_account):
            out.append(f"{e('service_account')}={self.service_account!r} is not a service account name")
        for name in ("checkpoint_dir", "savepoint_dir", "ha_dir"):
            value = getattr(self, name)
            if not _SHARED_STORAGE_URI.match(value):
                out.append(f"{e(name)}={value!r} must be a URI on storage every pod shares, such as s3://bucket/path "
                           "(a pod's local disk is gone when the operator replaces the pod)")
        dirs = [self.checkpoint_dir.rstrip("/"), self.savepoint_dir.rstrip("/"), self.ha_dir.rstrip("/")]
        if len(set(dirs)) < 3:
            out.append(f"{e('checkpoint_dir')}, {e('savepoint_dir')} and {e('ha_dir')} must be three different directories")
        if self.state_backend not in ("rocksdb", "hashmap"):
            out.append(f"{e('state_backend')}={self.state_backend!r} must be rocksdb or hashmap")
        if not _JAR_URI.match(self.sql_runner_jar):
            out.append(f"{e('sql_runner_jar')}={self.sql_runner_jar!r} must be a jar URI such as local:///opt/flink/usrlib/sql-runner.jar")
        elif self.mode == "session" and self.sql_runner_jar.startswith("local://"):
            out.append(f"{e('sql_runner_jar')}={self.sql_runner_jar!r}: in session mode the operator downloads the jar "
                       "and uploads it to the session cluster, so it needs an https://, s3:// (...) URI, not local://")
        if not _RESOURCE_NAME.match(self.session_cluster):
            out.append(f"{e('session_cluster')}={self.session_cluster!r} must start with a letter and have at most "
                       f"{MAX_RESOURCE_NAME} lower-case letters, digits and '-'")
        for name in ("jobmanager_memory", "taskmanager_memory"):
            if not _MEMORY.match(str(getattr(self, name))):
                out.append(f"{e(name)}={getattr(self, name)!r} must be a Flink memory size such as 1600m or 4g")
        for name in ("jobmanager_cpu", "taskmanager_cpu"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                out.append(f"{e(name)}={getattr(self, name)!r} must be a positive number of CPUs")
        if not isinstance(self.task_slots, int) or self.task_slots < 1:
            out.append(f"{e('task_slots')}={self.task_slots!r} must be a whole number >= 1")
        if self.s3_plugin and not re.fullmatch(r"flink-[a-z0-9-]+-\d+\.\d+\.\d+\.jar", self.s3_plugin):
            out.append(f"{e('s3_plugin')}={self.s3_plugin!r} must name a plugin jar of the image's opt/, e.g. flink-s3-fs-hadoop-1.20.3.jar")
        if not self.kubernetes_conn_id:
            out.append(f"{e('kubernetes_conn_id')} must not be empty")
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KubernetesSettings:
        """Settings from LAKEHOUSE_K8S_* variables; unset or empty ones keep their defaults.

        A value that is not a number where one is expected, or any invalid value, raises
        KubernetesConfigError listing every problem with the variable to fix."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems = []
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"], "").strip()
            if not raw:
                continue
            kind = type(f.default)
            try:
                values[f.name] = kind(raw) if kind in (int, float) else raw
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                problems.append(f"{f.metadata['env']}={raw!r} is not {what}")
        if problems:
            raise KubernetesConfigError("invalid Kubernetes settings:\n- " + "\n- ".join(problems))
        return cls(**values)

    @property
    def plural(self) -> str:
        """The custom resource a job becomes in this mode."""
        return PLURALS["FlinkDeployment" if self.mode == "application" else "FlinkSessionJob"]


def settings_reference() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of every setting: docs/KUBERNETES.md is checked against it."""
    return [(f.metadata["env"], str(f.default), f.metadata["doc"]) for f in dataclasses.fields(KubernetesSettings)]


# ---------------------------------------------------------------------------------------------
# What a job submits: shared with the session-cluster path
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedJob:
    """A job as lakehouse.streaming submits it: statements, job settings and their content hash."""

    job: StreamingJobSpec  # name = the Flink pipeline name (with LAKEHOUSE_PIPELINE_PREFIX)
    statements: tuple[str, ...]
    job_config: Mapping[str, str]
    sql_hash: str
    # Whether an upgrade may drop state the changed plan does not claim: not for jobs with a reset
    # cascade, whose replay would be counted twice downstream (Supervisor._upgrade does the same).
    replay_safe: bool = True


def render_streaming_job(
    job_name: str, *, paimon: PaimonHook | None = None, cdc: MySqlHook | None = None,
    reg: Registry | None = None, prefix: str | None = None,
) -> RenderedJob:
    """Render a registered job with the session path's own functions (connections are read here)."""
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook
    from lakehouse.streaming import CDC_CONN_ID, job_session_config, job_sql_hash, render_job

    reg = reg or registry()
    job = reg.job(job_name)
    prefix = pipeline_prefix() if prefix is None else prefix
    if prefix:
        job = replace(job, name=prefix + job.name)
    paimon = paimon or PaimonHook()
    cdc = cdc or MySqlHook(CDC_CONN_ID)
    if not _SHARED_STORAGE_URI.match(paimon.warehouse_uri):
        raise KubernetesConfigError(
            f"the Paimon warehouse of connection '{paimon.paimon_conn_id}' is {paimon.warehouse_uri!r}: "
            "Flink pods on Kubernetes need it on shared storage (s3://bucket/path, ...), not on one machine's disk"
        )
    return RenderedJob(
        job=job,
        statements=tuple(render_job(job, paimon=paimon, cdc=cdc)),
        job_config=job_session_config(job),
        sql_hash=job_sql_hash(job, paimon=paimon, cdc=cdc),
        replay_safe=not reg.reset_cascade(job_name),
    )


def encode_statements(statements: list[str] | tuple[str, ...]) -> list[str]:
    """The SQL runner's program arguments: one statement each, Base64 of its UTF-8 text.

    Base64 because the operator passes program arguments through the Flink configuration, where a
    list is split on ';' and a statement set holds several ';' and line breaks."""
    return [base64.b64encode(s.encode("utf-8")).decode("ascii") for s in statements]


def decode_statements(args: list[str]) -> list[str]:
    """The statements in a manifest's `spec.job.args` (what on-call reads, what tests compare)."""
    return [base64.b64decode(a, validate=True).decode("utf-8") for a in args]


def resource_name(pipeline_name: str) -> str:
    """Kubernetes name of a job's resource: the pipeline name with '-' for '_'."""
    name = pipeline_name.replace("_", "-")
    if not _RESOURCE_NAME.match(name):
        raise KubernetesConfigError(
            f"{pipeline_name!r} gives the resource name {name!r}, which must start with a letter and have at most "
            f"{MAX_RESOURCE_NAME} characters: shorten the job name or LAKEHOUSE_PIPELINE_PREFIX"
        )
    return name


# ---------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------
def cluster_configuration(settings: KubernetesSettings) -> dict[str, str]:
    """Flink settings of a cluster the operator runs: state, its storage, HA. Values are strings (the CRD's type)."""
    config = {
        "taskmanager.numberOfTaskSlots": str(settings.task_slots),
        "state.backend.type": settings.state_backend,
        "state.checkpoints.dir": settings.checkpoint_dir,
        # Required by upgradeMode savepoint: the operator's validator refuses the spec without it.
        "state.savepoints.dir": settings.savepoint_dir,
        "execution.checkpointing.num-retained": "3",
        # Kubernetes HA: a JobManager that dies comes back with its job and latest checkpoint, and the
        # operator can fall back to that checkpoint when a savepoint cannot be taken (unhealthy job).
        "high-availability.type": "kubernetes",
        "high-availability.storageDir": settings.ha_dir,
        "restart-strategy.type": "exponential-delay",
    }
    if settings.state_backend == "rocksdb":
        config["state.backend.incremental"] = "true"
    return config


def _metadata(name: str, settings: KubernetesSettings, *, component: str, job: RenderedJob | None = None) -> dict:
    labels = {"app.kubernetes.io/part-of": "lakehouse", "app.kubernetes.io/component": component}
    annotations = {}
    if job is not None:
        labels["lakehouse/job"] = job.job.name
        # Informational (metadata changes do not restart anything): which SQL the spec carries,
        # the same hash the session path records in ops.streaming_deployments.
        annotations["lakehouse/sql-hash"] = job.sql_hash
        if job.job.description:
            annotations["lakehouse/description"] = job.job.description
    meta: dict[str, Any] = {"name": name, "namespace": settings.namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _pod_template(settings: KubernetesSettings) -> dict | None:
    if not settings.s3_plugin:
        return None
    # The official image's entrypoint copies the plugin from opt/ to plugins/ (as docker-compose.yml does).
    env = [{"name": "ENABLE_BUILT_IN_PLUGINS", "value": settings.s3_plugin}]
    return {"spec": {"containers": [{"name": MAIN_CONTAINER, "env": env}]}}


def _cluster_spec(settings: KubernetesSettings, flink_configuration: dict[str, str]) -> dict:
    spec: dict[str, Any] = {
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "flinkVersion": FLINK_VERSION,
        "serviceAccount": settings.service_account,
        "mode": "native",
        "flinkConfiguration": flink_configuration,
        "jobManager": {"replicas": 1, "resource": {"memory": settings.jobmanager_memory, "cpu": float(settings.jobmanager_cpu)}},
        "taskManager": {"resource": {"memory": settings.taskmanager_memory, "cpu": float(settings.taskmanager_cpu)}},
    }
    pod_template = _pod_template(settings)
    if pod_template:
        spec["podTemplate"] = pod_template
    return spec


def _job_spec(rendered: RenderedJob, settings: KubernetesSettings) -> dict:
    return {
        "jarURI": settings.sql_runner_jar,
        "entryClass": SQL_RUNNER_ENTRY_CLASS,
        "args": encode_statements(rendered.statements),
        "parallelism": rendered.job.parallelism,
        "upgradeMode": "savepoint",
        "state": "running",
        # As the session path's upgrades (execution.savepoint.ignore-unclaimed-state): operators a
        # changed plan no longer has start empty, except in jobs whose replay would be counted
        # twice downstream, which must restore all their state (docs/STREAMING.md, "Upgrades and state").
        "allowNonRestoredState": rendered.replay_safe,
    }


def flink_deployment_manifest(rendered: RenderedJob, settings: KubernetesSettings) -> dict:
    """Application mode: a Flink cluster of its own for one job, the job run by the SQL runner."""
    flink_configuration = {**cluster_configuration(settings), **rendered.job_config}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "FlinkDeployment",
        "metadata": _metadata(resource_name(rendered.job.name), settings, component="streaming-job", job=rendered),
        "spec": {**_cluster_spec(settings, flink_configuration), "job": _job_spec(rendered, settings)},
    }


def flink_session_job_manifest(rendered: RenderedJob, settings: KubernetesSettings) -> dict:
    """Session mode: the job on the shared session cluster; its settings override the cluster's per job."""
    flink_configuration = {
        **rendered.job_config,
        "state.savepoints.dir": settings.savepoint_dir,
        "state.checkpoints.dir": settings.checkpoint_dir,
    }
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "FlinkSessionJob",
        "metadata": _metadata(resource_name(rendered.job.name), settings, component="streaming-job", job=rendered),
        "spec": {
            "deploymentName": settings.session_cluster,
            "flinkConfiguration": flink_configuration,
            "job": _job_spec(rendered, settings),
        },
    }


def session_cluster_manifest(settings: KubernetesSettings) -> dict:
    """Session mode: the FlinkDeployment (no job) that runs every FlinkSessionJob."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "FlinkDeployment",
        "metadata": _metadata(settings.session_cluster, settings, component="session-cluster"),
        "spec": _cluster_spec(settings, cluster_configuration(settings)),
    }


def job_manifest(rendered: RenderedJob, settings: KubernetesSettings) -> dict:
    """The job's resource in the configured mode."""
    if settings.mode == "application":
        return flink_deployment_manifest(rendered, settings)
    return flink_session_job_manifest(rendered, settings)


def manifest_yaml(manifest: Mapping[str, Any]) -> str:
    """YAML text of a manifest, as the provider's FlinkKubernetesOperator takes it (application_file)."""
    import yaml

    return yaml.safe_dump(dict(manifest), sort_keys=False, width=120)


def render_manifests(
    settings: KubernetesSettings, *, paimon: PaimonHook | None = None, cdc: MySqlHook | None = None,
    reg: Registry | None = None, prefix: str | None = None,
) -> list[dict]:
    """Every resource of the deployment: the session cluster (session mode) and one per registered job."""
    reg = reg or registry()
    manifests = [session_cluster_manifest(settings)] if settings.mode == "session" else []
    for name in reg.jobs:
        rendered = render_streaming_job(name, paimon=paimon, cdc=cdc, reg=reg, prefix=prefix)
        manifests.append(job_manifest(rendered, settings))
    return manifests


def main(argv: list[str] | None = None) -> int:
    """`python -m lakehouse.kubernetes [job ...]`: print the manifests (connections and LAKEHOUSE_K8S_* from the env)."""
    import sys

    names = list(argv if argv is not None else sys.argv[1:])
    try:
        settings = KubernetesSettings.from_env()
        if names:
            reg = registry()
            manifests = [job_manifest(render_streaming_job(n, reg=reg), settings) for n in names]
        else:
            manifests = render_manifests(settings)
    except ValueError as exc:  # KubernetesConfigError, RegistryError: the message says what to fix
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write("---\n".join(manifest_yaml(m) for m in manifests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
