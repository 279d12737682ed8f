"""Render the Flink session cluster's config.yaml from scripts/env.sh's variables.

Sized for a 2-core / 24 GB machine: one TaskManager with many light slots (the streaming jobs
are small; slot count, not CPU, is what limits how many jobs a session cluster can hold).
"""

import json
import os

env = os.environ
home = env["LAKEHOUSE_HOME"]
conf = {
    "env.java.opts.all": (
        # Paimon procedures parse times such as older_than in the JVM's zone: make it UTC, as Airflow is.
        "-Duser.timezone=UTC "
        "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED "
        "--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED "
        "--add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED "
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED "
        "--add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED "
        "--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED "
        "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED "
        "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED"
    ),
    # The process tag lets `stack.sh down` find our processes and nobody else's.
    "env.java.opts.jobmanager": f"-Dlakehouse.home={home}",
    "env.java.opts.taskmanager": f"-Dlakehouse.home={home}",
    "env.java.opts.sql-gateway": f"-Dlakehouse.home={home}",
    "env.log.dir": f"{env['FLINK_HOME']}/log",
    "env.pid.dir": f"{home}",
    "jobmanager.bind-host": "127.0.0.1",
    "jobmanager.rpc.address": "localhost",
    "jobmanager.rpc.port": int(env["FLINK_RPC_PORT"]),
    "jobmanager.memory.process.size": env["FLINK_JM_MEMORY"],
    "jobmanager.execution.failover-strategy": "region",
    "taskmanager.bind-host": "127.0.0.1",
    "taskmanager.host": "localhost",
    "taskmanager.numberOfTaskSlots": int(env["FLINK_TM_SLOTS"]),
    "taskmanager.memory.process.size": env["FLINK_TM_MEMORY"],
    # Heap state backend: no RocksDB native memory to reserve, so managed memory stays small.
    "taskmanager.memory.managed.fraction": 0.1,
    "taskmanager.memory.network.fraction": 0.05,
    "parallelism.default": 1,
    "rest.address": "127.0.0.1",
    "rest.bind-address": "127.0.0.1",
    "rest.port": int(env["FLINK_REST_PORT"]),
    "state.backend.type": "hashmap",
    "state.checkpoints.dir": f"file://{env['CHECKPOINT_DIR']}",
    "state.savepoints.dir": f"file://{env['SAVEPOINT_DIR']}",
    "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    "execution.checkpointing.num-retained": 3,
    "restart-strategy.type": "exponential-delay",
    "restart-strategy.exponential-delay.initial-backoff": "1 s",
    "restart-strategy.exponential-delay.max-backoff": "30 s",
    "web.cancel.enable": "true",
    # A lost TaskManager is noticed after 20 s instead of 50 s.
    "heartbeat.interval": 5000,
    "heartbeat.timeout": 20000,
    "table.exec.resource.default-parallelism": 1,
}
# JSON is valid YAML 1.2 and needs no extra dependency.
print(json.dumps(conf, indent=2))
