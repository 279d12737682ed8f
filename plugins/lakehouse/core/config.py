"""Typed configuration: the files under config/ are read into frozen pydantic models that refuse
unknown keys, and every problem becomes one `ConfigError` naming the file, the key and the fix.

A model of a config section derives from `ConfigModel`; `load_yaml` reads a file, and
`validate(Model, data, source=...)` turns it into the model or raises `ConfigError` with one line
per problem, e.g.

    tables.yaml: tables.ods.ods_users.freshnes_sla: unknown key; allowed: ddl, freshness_column, freshness_sla, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lakehouse.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class ConfigModel(BaseModel):
    """Base of every config model: frozen, unknown keys refused, no coercion of strings to numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, populate_by_name=True)


def load_yaml(path: Path) -> dict:
    """A YAML file that must hold a mapping (an empty file is an empty mapping)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must be a mapping of settings, got {type(data).__name__}")
    return data


def _allowed(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed where `loc` points (the model's fields, following nested models and the
    values of `dict[str, Model]` fields)."""
    current: type[BaseModel] | None = model
    skip_key = False
    for part in loc[:-1]:
        if current is None:
            return []
        if skip_key:  # a key of a dict of models: the value's model stays current
            skip_key = False
            continue
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        skip_key = getattr(field.annotation, "__origin__", None) is dict
        current = _model_in(field.annotation)
    if current is None:
        return []
    return sorted(f.alias or name for name, f in current.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    return None


def format_errors(exc: ValidationError, *, source: str, model: type[BaseModel] | None = None) -> str:
    """One line per problem: `<source>: <dotted key>: <what is wrong>`."""
    lines = []
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        where = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            parent = error.get("ctx", {}).get("allowed") or (_allowed(model, loc) if model else [])
            message = "unknown key" + (f"; allowed: {', '.join(parent)}" if parent else "")
        else:
            message = error["msg"]
            if error.get("input") is not None and error["type"] not in ("missing",):
                message += f" (got {error['input']!r})"
        lines.append(f"{source}: {where}: {message}")
    return "\n".join(lines)


def validate(model: type[M], data: Any, *, source: str) -> M:
    """`data` as `model`, or ConfigError listing every problem with its key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source=source, model=model)) from None
