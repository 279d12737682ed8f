"""Where alerts go besides ops.alerts, each from an Airflow connection:

- `webhook` (`alerts_webhook`): a Slack-compatible incoming webhook; the message is POSTed as JSON
  `{"text": ..., "blocks": [...]}` (Slack, Mattermost, Rocket.Chat and most chat tools accept it).
  The URL is the connection's `url` extra, or `<http|https>://host[:port]/<schema>`.
- `smtp` (`alerts_smtp`): a mail through an SMTP server: host, port, login, password; extras `to`
  (a list or a comma-separated string), `from` (default: the login), `ssl` (SMTPS, default on port
  465), `starttls` (default on port 587).

`send` raises on any failure (the dispatcher records it); the webhook's URL is a credential and
never appears in an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lakehouse.core.errors import ConfigError, ExternalServiceError

if TYPE_CHECKING:
    from lakehouse.alerts.messages import Message

log = logging.getLogger(__name__)

WEBHOOK_EXAMPLE = '{"conn_type": "http", "extra": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"}}'
SMTP_EXAMPLE = (
    '{"conn_type": "smtp", "host": "smtp.example.com", "port": 587, "login": "alerts", "password": "...", '
    '"extra": {"from": "lakehouse@example.com", "to": "oncall@example.com"}}'
)


def connection_defined(conn_id: str) -> bool:
    """Whether Airflow knows the connection (environment, secrets backend or metastore)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    except Exception as exc:  # noqa: BLE001 - a lookup that fails is a destination not to use
        log.warning("cannot look up connection %s: %s", conn_id, exc)
        return False
    return True


@dataclass(frozen=True)
class WebhookDestination:
    conn_id: str
    min_severity: str = "warning"
    timeout: float = 10.0
    name: str = "webhook"

    def url(self) -> str:
        from lakehouse.hooks._base import get_connection

        conn = get_connection(self.conn_id, example=WEBHOOK_EXAMPLE)
        url = (conn.extra_dejson or {}).get("url")
        if url:
            return url
        if not conn.host:
            raise ConfigError(f"connection {self.conn_id} has neither a `url` extra nor a host: e.g. {WEBHOOK_EXAMPLE}")
        scheme = "https" if (conn.conn_type or "").lower() == "https" else "http"
        port = f":{conn.port}" if conn.port else ""
        return f"{scheme}://{conn.host}{port}/{(conn.schema or '').lstrip('/')}"

    def send(self, message: Message) -> None:
        import requests

        url = self.url()
        parts = urlsplit(url)
        shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"
        try:
            response = requests.post(url, json=message.slack(), timeout=self.timeout)
        except requests.RequestException as exc:
            detail = str(exc).replace(url, shown).replace(parts.path, "/…") if parts.path else str(exc)
            raise ExternalServiceError(f"webhook {shown}: {type(exc).__name__}: {detail}") from None
        if response.status_code >= 300:
            raise ExternalServiceError(f"webhook {shown} answered HTTP {response.status_code}: {response.text[:300]}")


@dataclass(frozen=True)
class SmtpDestination:
    conn_id: str
    min_severity: str = "critical"
    timeout: float = 10.0
    name: str = "smtp"

    def send(self, message: Message) -> None:
        import smtplib
        from email.message import EmailMessage

        from lakehouse.hooks._base import get_connection

        conn = get_connection(self.conn_id, example=SMTP_EXAMPLE)
        extra = conn.extra_dejson or {}
        to = extra.get("to") or []
        recipients = [a.strip() for a in (to.split(",") if isinstance(to, str) else to) if a.strip()]
        sender = extra.get("from") or conn.login
        if not recipients or not sender:
            raise ConfigError(
                f"connection {self.conn_id} needs the extras `to` (recipients) and `from` (or a login): "
                f"e.g. {SMTP_EXAMPLE}"
            )
        port = int(conn.port or 25)
        use_ssl = bool(extra.get("ssl", port == 465))
        starttls = bool(extra.get("starttls", port == 587))
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = sender
        mail["To"] = ", ".join(recipients)
        mail.set_content(message.text)
        client = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
        try:
            with client(conn.host or "localhost", port, timeout=self.timeout) as server:
                if starttls:
                    server.starttls()
                if conn.login:
                    server.login(conn.login, conn.password or "")
                server.send_message(mail, from_addr=sender, to_addrs=recipients)
        except (OSError, smtplib.SMTPException) as exc:
            raise ExternalServiceError(f"smtp {conn.host}:{port}: {type(exc).__name__}: {exc}") from None
