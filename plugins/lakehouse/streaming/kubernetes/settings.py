"""Settings of the Kubernetes path (LAKEHOUSE_K8S_* environment variables) and the operator's API names."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakehouse.core.errors import ConfigError

if TYPE_CHECKING:
    pass


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


class KubernetesConfigError(ConfigError):
    """A LAKEHOUSE_K8S_* (or LAKEHOUSE_DEPLOYMENT_TARGET) value is invalid; the message names each one."""


def deployment_target(environ: Mapping[str, str] | None = None) -> str:
    """Where streaming_deploy sends the jobs (env LAKEHOUSE_DEPLOYMENT_TARGET): `session` (default,
    the SQL Gateway of a session cluster) or `kubernetes` (resources of the Flink Kubernetes Operator)."""
    environ = os.environ if environ is None else environ
    target = environ.get(DEPLOYMENT_TARGET_ENV, "").strip() or "session"
    if target not in DEPLOYMENT_TARGETS:
        raise KubernetesConfigError(
            f"{DEPLOYMENT_TARGET_ENV}={target!r} must be one of {', '.join(DEPLOYMENT_TARGETS)}"
        )
    return target


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class KubernetesSettings:
    """Where and how the jobs run on Kubernetes. Every field has a LAKEHOUSE_K8S_* variable (see `from_env`)."""

    namespace: str = _setting("LAKEHOUSE_K8S_NAMESPACE", "lakehouse", "namespace of every resource")
    mode: str = _setting(
        "LAKEHOUSE_K8S_MODE",
        "application",
        "application (a FlinkDeployment per job) or session (FlinkSessionJobs on one session cluster)",
    )
    image: str = _setting(
        "LAKEHOUSE_K8S_IMAGE",
        "lakehouse/flink:1.20.3",
        "the project's Flink image (docker/flink/Dockerfile): connector jars and the SQL runner",
    )
    image_pull_policy: str = _setting(
        "LAKEHOUSE_K8S_IMAGE_PULL_POLICY", "IfNotPresent", "Always, IfNotPresent or Never"
    )
    service_account: str = _setting(
        "LAKEHOUSE_K8S_SERVICE_ACCOUNT",
        "flink",
        "service account of the Flink pods (the operator's Helm chart creates `flink`)",
    )
    checkpoint_dir: str = _setting(
        "LAKEHOUSE_K8S_CHECKPOINT_DIR",
        "s3://lakehouse/flink/checkpoints",
        "state.checkpoints.dir, on storage every pod shares",
    )
    savepoint_dir: str = _setting(
        "LAKEHOUSE_K8S_SAVEPOINT_DIR",
        "s3://lakehouse/flink/savepoints",
        "state.savepoints.dir: where upgrades take their savepoints",
    )
    ha_dir: str = _setting(
        "LAKEHOUSE_K8S_HA_DIR",
        "s3://lakehouse/flink/ha",
        "high-availability.storageDir (Kubernetes HA: JobManager metadata)",
    )
    state_backend: str = _setting(
        "LAKEHOUSE_K8S_STATE_BACKEND", "rocksdb", "rocksdb (incremental checkpoints) or hashmap"
    )
    sql_runner_jar: str = _setting(
        "LAKEHOUSE_K8S_SQL_RUNNER_JAR",
        "local:///opt/flink/usrlib/sql-runner.jar",
        "the SQL runner jar; session jobs need a URI the operator downloads (https://, s3://)",
    )
    session_cluster: str = _setting(
        "LAKEHOUSE_K8S_SESSION_CLUSTER", "lakehouse-session", "name of the session FlinkDeployment (session mode)"
    )
    jobmanager_memory: str = _setting(
        "LAKEHOUSE_K8S_JOBMANAGER_MEMORY", "1600m", "JobManager pod memory (Flink units: 1600m, 2g)"
    )
    jobmanager_cpu: float = _setting("LAKEHOUSE_K8S_JOBMANAGER_CPU", 1.0, "JobManager pod CPUs")
    taskmanager_memory: str = _setting("LAKEHOUSE_K8S_TASKMANAGER_MEMORY", "4g", "TaskManager pod memory")
    taskmanager_cpu: float = _setting("LAKEHOUSE_K8S_TASKMANAGER_CPU", 1.0, "TaskManager pod CPUs")
    task_slots: int = _setting(
        "LAKEHOUSE_K8S_TASK_SLOTS", 1, "slots per TaskManager; a job gets ceil(parallelism / slots) TaskManagers"
    )
    s3_plugin: str = _setting(
        "LAKEHOUSE_K8S_S3_PLUGIN",
        "flink-s3-fs-hadoop-1.20.3.jar",
        "Flink file system plugin the image enables (ENABLE_BUILT_IN_PLUGINS); empty for none",
    )
    kubernetes_conn_id: str = _setting(
        "LAKEHOUSE_K8S_CONN_ID",
        "kubernetes_default",
        "Airflow connection of the Kubernetes cluster (cncf.kubernetes provider)",
    )

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
            out.append(
                f"{e('namespace')}={self.namespace!r} is not a Kubernetes namespace name (lower case, digits, '-')"
            )
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
                out.append(
                    f"{e(name)}={value!r} must be a URI on storage every pod shares, such as s3://bucket/path "
                    "(a pod's local disk is gone when the operator replaces the pod)"
                )
        dirs = [self.checkpoint_dir.rstrip("/"), self.savepoint_dir.rstrip("/"), self.ha_dir.rstrip("/")]
        if len(set(dirs)) < 3:
            out.append(
                f"{e('checkpoint_dir')}, {e('savepoint_dir')} and {e('ha_dir')} must be three different directories"
            )
        if self.state_backend not in ("rocksdb", "hashmap"):
            out.append(f"{e('state_backend')}={self.state_backend!r} must be rocksdb or hashmap")
        if not _JAR_URI.match(self.sql_runner_jar):
            out.append(
                f"{e('sql_runner_jar')}={self.sql_runner_jar!r} must be a jar URI such as local:///opt/flink/usrlib/sql-runner.jar"
            )
        elif self.mode == "session" and self.sql_runner_jar.startswith("local://"):
            out.append(
                f"{e('sql_runner_jar')}={self.sql_runner_jar!r}: in session mode the operator downloads the jar "
                "and uploads it to the session cluster, so it needs an https://, s3:// (...) URI, not local://"
            )
        if not _RESOURCE_NAME.match(self.session_cluster):
            out.append(
                f"{e('session_cluster')}={self.session_cluster!r} must start with a letter and have at most "
                f"{MAX_RESOURCE_NAME} lower-case letters, digits and '-'"
            )
        for name in ("jobmanager_memory", "taskmanager_memory"):
            if not _MEMORY.match(str(getattr(self, name))):
                out.append(f"{e(name)}={getattr(self, name)!r} must be a Flink memory size such as 1600m or 4g")
        for name in ("jobmanager_cpu", "taskmanager_cpu"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                out.append(f"{e(name)}={getattr(self, name)!r} must be a positive number of CPUs")
        if not isinstance(self.task_slots, int) or self.task_slots < 1:
            out.append(f"{e('task_slots')}={self.task_slots!r} must be a whole number >= 1")
        if self.s3_plugin and not re.fullmatch(r"flink-[a-z0-9-]+-\d+\.\d+\.\d+\.jar", self.s3_plugin):
            out.append(
                f"{e('s3_plugin')}={self.s3_plugin!r} must name a plugin jar of the image's opt/, "
                "e.g. flink-s3-fs-hadoop-1.20.3.jar"
            )
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
