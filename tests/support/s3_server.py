"""An S3-compatible server for tests: moto's server in a thread of the test process.

It listens on 127.0.0.1 at a free port, so a Flink TaskManager on this machine reaches it as
well as pypaimon does. Buckets and objects live in memory and go with the process.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Any non-empty keys: moto accepts every signature. Long enough for Airflow's secrets masker
# (it skips values under 5 characters), so the tests also see what it masks.
ACCESS_KEY = "lakehouse-test-access"
SECRET_KEY = "lakehouse-test-secret-9f2c"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    bucket: str

    def warehouse(self, path: str = "warehouse") -> str:
        return f"s3://{self.bucket}/{path}"

    def connection_extra(self, path: str = "warehouse") -> dict[str, str]:
        """The `paimon` connection's extras for a warehouse in this bucket: what an operator
        writes for MinIO (endpoint, keys, path-style requests)."""
        return {
            "warehouse": self.warehouse(path),
            "s3.endpoint": self.endpoint,
            "s3.access-key": ACCESS_KEY,
            "s3.secret-key": SECRET_KEY,
            "s3.path.style.access": "true",
        }

    def connection_json(self, path: str = "warehouse") -> str:
        """The connection as the value of an AIRFLOW_CONN_<ID> environment variable."""
        return json.dumps({"conn_type": "paimon", "extra": self.connection_extra(path)})

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix`, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@contextmanager
def moto_s3(bucket: str | None = None) -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 (a free port), create `bucket`, stop it afterwards."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(endpoint=f"http://{host}:{port}", bucket=bucket or f"lake-{uuid.uuid4().hex[:8]}")
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.stop()
