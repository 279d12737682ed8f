"""Applying the rendered resources with the provider's FlinkKubernetesOperator.

The provider's operator only creates a resource. Deploying is idempotent here, as on the session
cluster, and an existing resource gets the new spec instead of an error: with `upgradeMode:
savepoint` the Flink operator turns a changed spec into stop-with-savepoint and restart from it,
and leaves an unchanged one alone.

The manifest is rendered when the task runs, never at parse time (connections are read then) and
never through XCom or Jinja: the SQL carries the CDC credentials. Imported by the deploy DAG only
for the `kubernetes` target: the provider brings the Kubernetes client (and requests) with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.apache.flink.operators.flink_kubernetes import FlinkKubernetesOperator

from lakehouse.core.resources import resources
from lakehouse.streaming.kubernetes.manifests import (
    job_manifest,
    manifest_yaml,
    render_streaming_job,
    session_cluster_manifest,
)
from lakehouse.streaming.kubernetes.settings import API_GROUP, API_VERSION, PLURALS, KubernetesSettings


class _ApplyFlinkResource(FlinkKubernetesOperator):
    """Create the resource with the provider's operator; replace its spec when it exists already."""

    # The manifest is rendered in execute(), so it is no template field (no Jinja over SQL text).
    template_fields: Sequence[str] = ("namespace", "kubernetes_conn_id")
    template_ext: Sequence[str] = ()

    def __init__(self, *, settings: KubernetesSettings, plural: str, **kwargs: Any) -> None:
        super().__init__(
            application_file="",  # set in execute()
            namespace=settings.namespace,
            kubernetes_conn_id=settings.kubernetes_conn_id,
            api_group=API_GROUP,
            api_version=API_VERSION,
            plural=plural,
            **kwargs,
        )
        self.settings = settings

    def render(self) -> dict:
        raise NotImplementedError

    def execute(self, context: Any) -> dict:
        from kubernetes.client.exceptions import ApiException

        manifest = self.render()
        _mask_job_arguments(manifest)
        self.application_file = manifest_yaml(manifest)
        name = manifest["metadata"]["name"]
        try:
            super().execute(context)
            action = "created"
        except ApiException as exc:
            if exc.status != 409:  # 409: it exists already
                raise
            self._replace(manifest)
            action = "replaced"
        self.log.info("%s %s/%s %s", manifest["kind"], self.namespace, name, action)
        # Not the response: it holds the spec, whose SQL carries credentials.
        return {
            "kind": manifest["kind"],
            "name": name,
            "namespace": self.namespace,
            "action": action,
            "sql_hash": manifest["metadata"].get("annotations", {}).get("lakehouse/sql-hash"),
        }

    def _replace(self, manifest: dict) -> None:
        """PUT the whole manifest (not a merge patch, so removed settings go too); status is untouched."""
        api = self.hook.custom_object_client
        name = manifest["metadata"]["name"]
        current = api.get_namespaced_custom_object(self.api_group, self.api_version, self.namespace, self.plural, name)
        body = {
            **manifest,
            "metadata": {**manifest["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        api.replace_namespaced_custom_object(self.api_group, self.api_version, self.namespace, self.plural, name, body)


class FlinkJobResourceOperator(_ApplyFlinkResource):
    """Deploy one registered streaming job: a FlinkDeployment (application mode) or a FlinkSessionJob."""

    def __init__(self, *, job_name: str, settings: KubernetesSettings, **kwargs: Any) -> None:
        super().__init__(settings=settings, plural=settings.plural, **kwargs)
        self.job_name = job_name

    def render(self) -> dict:
        r = resources()
        return job_manifest(render_streaming_job(self.job_name, paimon=r.paimon, cdc=r.cdc), self.settings)


class FlinkSessionClusterOperator(_ApplyFlinkResource):
    """Deploy the session FlinkDeployment that runs the FlinkSessionJobs (session mode)."""

    def __init__(self, *, settings: KubernetesSettings, **kwargs: Any) -> None:
        super().__init__(settings=settings, plural=PLURALS["FlinkDeployment"], **kwargs)

    def render(self) -> dict:
        return session_cluster_manifest(self.settings)


def _mask_job_arguments(manifest: dict) -> None:
    """Hide the SQL runner's arguments in task logs (the provider logs the body it creates).

    Airflow masks connection passwords, but not inside the Base64 of a statement."""
    from airflow.sdk.log import mask_secret

    for arg in manifest.get("spec", {}).get("job", {}).get("args", []):
        mask_secret(arg)
