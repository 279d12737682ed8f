"""Days as requests name them: `YYYY-MM-DD` parsed strictly, their UTC bounds, their T+1 tag."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from lakehouse.core.errors import BadRequest

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The Paimon tag that publishes a day's T+1 view.
TAG_PREFIX = "t1-"


def parse_day(text: str, *, field: str = "date") -> date:
    if not isinstance(text, str) or not _DAY.match(text.strip()):
        raise BadRequest(f"{field} {text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"{field} {text!r} is not a calendar day") from None


def tag_name(dt: str) -> str:
    """The Paimon tag that publishes a day's T+1 view (`t1-2026-11-23`)."""
    return TAG_PREFIX + parse_day(dt).isoformat()


def day_bounds(dt: str) -> tuple[datetime, datetime]:
    day = parse_day(dt)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
