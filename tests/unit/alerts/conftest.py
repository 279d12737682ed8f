"""Fixtures of the alert tests: a real pypaimon warehouse in tmp_path (ops.alerts), a fake
Slack-compatible webhook and a fake SMTP server on 127.0.0.1, and a clock the tests move."""

from __future__ import annotations

import json
import socketserver
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from lakehouse.hooks.paimon import PaimonHook

PAIMON_CONN_ID = "paimon_alerts_ut"
WEBHOOK_CONN_ID = "alerts_webhook_ut"
SMTP_CONN_ID = "alerts_smtp_ut"


@pytest.fixture
def paimon(tmp_path, monkeypatch):
    wh = tmp_path / "warehouse"
    wh.mkdir()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{PAIMON_CONN_ID.upper()}", json.dumps({"conn_type": "paimon", "extra": {"warehouse": str(wh)}})
    )
    return PaimonHook(PAIMON_CONN_ID)


class Clock:
    """A clock the test moves: `clock()` is now, `clock.advance(minutes=2)` moves it."""

    def __init__(self, start: datetime = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock():
    return Clock()


# ------------------------------------------------------------------------------------- webhook
@dataclass
class FakeWebhook:
    """What it received (path, headers, JSON body) and the status it answers with."""

    status: int = 200
    requests: list[dict] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T0/B0/secret"


def _webhook_handler(fake: FakeWebhook):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")}
            )
            self.send_response(fake.status)
            self.end_headers()
            self.wfile.write(b"ok" if fake.status == 200 else b"invalid_token")

        def log_message(self, *args):  # quiet
            pass

    return Handler


@pytest.fixture
def webhook(monkeypatch):
    fake = FakeWebhook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _webhook_handler(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}", json.dumps({"conn_type": "http", "extra": {"url": fake.url}})
    )
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------- SMTP
@dataclass
class FakeSmtp:
    messages: list[dict] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0


def _smtp_handler(fake: FakeSmtp):
    class Handler(socketserver.StreamRequestHandler):
        """Just enough SMTP (RFC 5321) for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

        def reply(self, line: str) -> None:
            self.wfile.write((line + "\r\n").encode())

        def handle(self):
            self.reply("220 fake ESMTP")
            sender, rcpts = None, []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250-fake")
                    self.reply("250 AUTH PLAIN")
                elif verb == "AUTH":
                    import base64

                    fake.logins.append(base64.b64decode(line.split()[-1]).decode().split("\0")[1])
                    self.reply("235 ok")
                elif verb == "MAIL":
                    sender = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                    self.reply("250 ok")
                elif verb == "RCPT":
                    rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 go on")
                    data = []
                    while (chunk := self.rfile.readline().decode()) not in (".\r\n", ""):
                        data.append(chunk)
                    fake.messages.append({"from": sender, "to": rcpts, "data": "".join(data)})
                    sender, rcpts = None, []
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    return Handler


@pytest.fixture
def smtp(monkeypatch):
    fake = FakeSmtp()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _smtp_handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": fake.port,
                "login": "alerts",
                "password": "pw",
                "extra": {
                    "from": "lakehouse@example.com",
                    "to": "oncall@example.com, data@example.com",
                    "starttls": False,
                },
            }
        ),
    )
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------ task contexts
def failure_context(
    exception: BaseException | None,
    *,
    dag_id: str = "streaming_supervision",
    task_id: str = "supervise_ods_delivery_cdc",
    run_id: str = "scheduled__2026-11-25T10:00:00+00:00",
    state: str = "failed",
    try_number: int = 2,
    map_index: int = -1,
) -> dict:
    """What Airflow's task runner hands on_failure_callback (the parts the notifier reads)."""
    ti = SimpleNamespace(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=map_index,
        rendered_map_index=None,
        try_number=try_number,
        max_tries=1,
        state=state,
        log_url=f"http://127.0.0.1:8080/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
    )
    return {"ti": ti, "task_instance": ti, "exception": exception, "run_id": run_id}
