"""Secrets in what the control plane logs or raises: masked by option name and by known value.

Two nets, because either alone misses something:

- by name: the value of any option, property or JSON member whose name says it holds a secret
  (`password`, `passwd`, `secret`, `token`, `access-key`, `private-key`, `credential`), in the
  forms a statement or Flink's error show it: `'password' = 'p''ss'` (doubled quotes read
  correctly), `'s3.secret-key'='...'`, `"password": "..."`, `password=...`;
- by value: the secrets `register_secret` was given, wherever they appear, as they are or
  escaped (`p''ss` in SQL, `p\\'ss` or `p\\"ss` in a repr or JSON). `lakehouse.core.flink_sql`
  registers every secret of the connections it renders into SQL (the CDC password, the
  warehouse's secret key), so a Flink error that echoes one in another form is masked too.

An access key id is masked by name only: it is an identifier, often an ordinary word (a user or
bucket name) that masking by value would blank out of table names.
"""

from __future__ import annotations

import json
import re
import threading

MASK = "****"
# Shorter registered values are masked by name only (masking "ab" everywhere ruins a log).
MIN_MASKED_LENGTH = 4

SECRET_NAME = re.compile(r"password|passwd|secret|token|access[-_.]?key|private[-_.]?key|credential", re.I)
_NAME = r"[\w.-]*(?:password|passwd|secret|token|access[-_.]?key|private[-_.]?key|credential)[\w.-]*"
# A single-quoted value: '' is a quote inside it; so is a lone quote followed by a character that
# cannot follow a literal (Flink lists option values unescaped: 'password'='p'ss').
_SINGLE = r"'(?:[^']|''|'(?=[^\s,;)\]}'=]))*'"
_DOUBLE = r'"(?:[^"\\]|\\.|"")*"'
_SECRET_OPTION = re.compile(
    rf"(?P<key>'{_NAME}'|\"{_NAME}\"|\b{_NAME})(?P<sep>\s*=\s*|(?<=['\"])\s*:\s*)"
    rf"(?P<value>{_SINGLE}|{_DOUBLE}|[^\s,;&)'\"]+)",
    re.I,
)

_known: set[str] = set()
_lock = threading.Lock()


def is_secret_name(name: str) -> bool:
    """Whether an option or property of this name holds a secret."""
    return bool(SECRET_NAME.search(name))


def register_secret(value: object) -> None:
    """Mask this value (and its escaped forms) in everything `mask_secrets` sees from now on."""
    text = "" if value is None else str(value)
    if len(text) < MIN_MASKED_LENGTH:
        return
    forms = {
        text,
        text.replace("'", "''"),  # a SQL literal
        json.dumps(text)[1:-1],  # JSON
        repr(text)[1:-1],  # a Python repr
        text.replace("'", "\\'"),
    }
    with _lock:
        _known.update(f for f in forms if len(f) >= MIN_MASKED_LENGTH)


def forget_secrets() -> None:
    """Drop the registered values (tests)."""
    with _lock:
        _known.clear()


def _mask_value(match: re.Match) -> str:
    value = match.group("value")
    quote = value[0] if value[0] in "'\"" else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


def mask_secrets(text: str) -> str:
    """The text with every registered secret and every secret-named option's value replaced by ****."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # longest first: 'p''ss' before 'p'
    for secret in known:
        text = text.replace(secret, MASK)
    return _SECRET_OPTION.sub(_mask_value, text)
