"""One way to turn task results into plain JSON values (XCom payloads, JSON columns, messages).

`to_jsonable(value)` converts, recursively:

| value                                  | becomes                                        |
|----------------------------------------|------------------------------------------------|
| None, bool, int, float, str            | itself                                         |
| a dataclass instance                   | a dict of its fields (like `dataclasses.asdict`)|
| a mapping                              | a dict (keys other than str/int/float/bool: their str) |
| list, tuple, set, frozenset            | a list (a set in sorted order when it can be sorted) |
| Decimal                                | its str: exact (a float would round money)     |
| datetime, date, time (and pandas Timestamp) | its isoformat()                           |
| Enum                                   | its value                                      |
| numpy / pandas scalars (`.item()`)     | the Python value                               |
| anything else (Path, pandas NA, ...)   | its str, as `json.dumps(default=str)` would    |

The result is what Airflow stores for a task's return value; reading it back into objects is
each type's own business (e.g. `lakehouse.batch.t1.reports_from_dicts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any

_SCALARS = (str, bool, int, float, type(None))


def to_jsonable(value: Any) -> Any:
    """`value` as JSON-ready Python values (see the module's table)."""
    if isinstance(value, _SCALARS):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {(k if isinstance(k, _SCALARS) else str(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy / pandas scalars
        try:
            return to_jsonable(value.item())
        except (ValueError, AttributeError, TypeError):
            pass
    if hasattr(value, "isoformat"):  # pandas Timestamp and the like
        return value.isoformat()
    return str(value)
