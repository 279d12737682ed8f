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
(tests/unit/streaming/test_kubernetes_manifests.py); docs/KUBERNETES.md explains the mapping.
"""
