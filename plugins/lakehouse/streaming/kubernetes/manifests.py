"""Flink Kubernetes Operator resources (FlinkDeployment, FlinkSessionJob) for the registered streaming jobs."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lakehouse.core.registry import Registry, StreamingJobSpec, pipeline_prefix, registry
from lakehouse.streaming.kubernetes.settings import (
    _RESOURCE_NAME,
    _SHARED_STORAGE_URI,
    API_GROUP,
    API_VERSION,
    FLINK_VERSION,
    MAIN_CONTAINER,
    MAX_RESOURCE_NAME,
    SQL_RUNNER_ENTRY_CLASS,
    KubernetesConfigError,
    KubernetesSettings,
)

if TYPE_CHECKING:
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook


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
    job_name: str,
    *,
    paimon: PaimonHook,
    cdc: MySqlHook,
    reg: Registry | None = None,
    prefix: str | None = None,
) -> RenderedJob:
    """Render a registered job with the session path's own functions (connections are read here)."""
    from lakehouse.streaming.deploy import job_session_config, job_sql_hash, render_job

    reg = reg or registry()
    job = reg.job(job_name)
    prefix = pipeline_prefix() if prefix is None else prefix
    if prefix:
        job = replace(job, name=prefix + job.name)
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
        "jobManager": {
            "replicas": 1,
            "resource": {"memory": settings.jobmanager_memory, "cpu": float(settings.jobmanager_cpu)},
        },
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
    settings: KubernetesSettings,
    *,
    paimon: PaimonHook,
    cdc: MySqlHook,
    reg: Registry | None = None,
    prefix: str | None = None,
) -> list[dict]:
    """Every resource of the deployment: the session cluster (session mode) and one per registered job."""
    reg = reg or registry()
    manifests = [session_cluster_manifest(settings)] if settings.mode == "session" else []
    for name in reg.jobs:
        rendered = render_streaming_job(name, paimon=paimon, cdc=cdc, reg=reg, prefix=prefix)
        manifests.append(job_manifest(rendered, settings))
    return manifests
