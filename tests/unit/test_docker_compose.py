"""Static checks of the Docker Compose stack: docker-compose.yml, .env.example and the Dockerfiles.

No Docker engine is needed (there is none on the development machines or in CI): the compose
file is parsed and interpolated here with Compose's own rules, and checked against a subset of
the compose-spec schema embedded below. Where a `docker compose` client is installed, one more
test runs `docker compose config -q`, which needs the client only.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
FLINK_DOCKERFILE = REPO / "docker" / "flink" / "Dockerfile"
AIRFLOW_DOCKERFILE = REPO / "docker" / "airflow" / "Dockerfile"
FLINK_POM = REPO / "flink" / "pom.xml"

# Names of variables and options that hold secrets.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|FERNET|TOKEN|ACCESS[-_.]?KEY|PRIVATE[-_.]?KEY", re.I)
# ... unless the name says it holds where a secret is, not the secret (*_FILE, *_PATH, *_DIR).
LOCATION_NAME = re.compile(r"[-_.](FILE|PATH|DIR)$", re.I)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not LOCATION_NAME.search(name)


# Services that run once and exit (the others run for good).
ONE_SHOT = {"secrets-check", "airflow-init", "minio-init", "starrocks-init"}
# The one-shot that refuses empty and change-me* secrets; every other service waits for it.
SECRETS_CHECK = "secrets-check"
# The scripts the compose file runs (bind-mounted), exercised here with fake clients.
MYSQL_INIT = REPO / "docker" / "mysql" / "02-users-and-grants.sh"
MINIO_INIT = REPO / "docker" / "minio" / "init.sh"
CHECK_SECRETS = REPO / "docker" / "check-secrets.sh"
# The Airflow 3 components (as in Airflow's official compose file) and what each one runs.
AIRFLOW_SERVICES = {
    "airflow-init": None,
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
EXPECTED_SERVICES = set(AIRFLOW_SERVICES) | {
    SECRETS_CHECK,
    "postgres",
    "mysql",
    "minio",
    "minio-init",
    "flink-jobmanager",
    "flink-taskmanager",
    "flink-sql-gateway",
    "starrocks-fe",
    "starrocks-init",
    "starrocks-be",
}
# Project directories the Airflow containers need next to each other (plugins/lakehouse/core/paths.py).
AIRFLOW_PROJECT_MOUNTS = {"dags", "plugins", "sql", "config", "expectations"}


# ---------------------------------------------------------------------------------------------
# Compose variable interpolation (https://docs.docker.com/compose/how-tos/environment-variables/
# variable-interpolation/): $$ escapes, ${VAR}, $VAR, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
# ${VAR:+a}, ${VAR+a}, nested in the default.
# ---------------------------------------------------------------------------------------------
class MissingVariable(ValueError):
    def __init__(self, name: str, message: str):
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.S)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unclosed ${{ in {text!r}")


def interpolate(text: str, env: dict[str, str] | None, refs: list[tuple[str, str]] | None = None) -> str:
    """Interpolate like Compose; with env=None only collect the references (name, operator) in refs."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 1)
            m = _BRACED.fullmatch(text[i + 2 : end])
            if not m:
                raise ValueError(f"invalid interpolation ${{{text[i + 2 : end]}}} in {text!r}")
            name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
            if refs is not None:
                refs.append((name, op))
            arg = interpolate(arg, env, refs)
            if env is not None:
                is_set = name in env
                value = env.get(name, "")
                if op == ":-":
                    value = value if value else arg
                elif op == "-":
                    value = value if is_set else arg
                elif op == ":?" and not value:
                    raise MissingVariable(name, arg)
                elif op == "?" and not is_set:
                    raise MissingVariable(name, arg)
                elif op == ":+":
                    value = arg if value else ""
                elif op == "+":
                    value = arg if is_set else ""
                out.append(value)
            i = end + 1
        elif (m := _NAME.match(text, i + 1)) is not None:
            if refs is not None:
                refs.append((m.group(0), ""))
            if env is not None:
                out.append(env.get(m.group(0), ""))
            i = m.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string value of a parsed YAML document, with its dotted path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for idx, value in enumerate(node):
            yield from strings(value, f"{path}[{idx}]")
    elif isinstance(node, str):
        yield path, node


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        assert m, f"{path.name}:{lineno}: not a KEY=VALUE line: {line!r}"
        key, value = m.groups()
        assert key not in values, f"{path.name}:{lineno}: {key} defined twice"
        values[key] = value
    return values


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def volume_mounts(service: dict) -> Iterator[tuple[str, str, str]]:
    """(type, source, target) of each volume entry; type is 'bind' or 'volume'."""
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            yield entry.get("type", "volume"), str(entry.get("source", "")), str(entry.get("target", ""))
            continue
        parts = entry.split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        yield kind, source, target


def command_line(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value or "")


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
def _load_compose() -> dict:
    with COMPOSE_FILE.open() as fh:
        return yaml.safe_load(fh)


RAW = _load_compose()
SERVICE_NAMES = sorted((RAW or {}).get("services") or {})


@pytest.fixture(scope="module")
def raw() -> dict:
    return _load_compose()


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def filled_env(env_example) -> dict[str, str]:
    """.env.example with its deliberately empty values (the Fernet key) filled in."""
    return {key: value or f"test-value-for-{key.lower()}" for key, value in env_example.items()}


@pytest.fixture(scope="module")
def resolved(raw, filled_env) -> dict:
    return resolve(raw, filled_env)


@pytest.fixture(scope="module")
def pom_versions() -> dict[str, str]:
    root = ET.parse(FLINK_POM).getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = root.find("m:properties", ns)
    assert props is not None, "flink/pom.xml has no <properties>"
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in props}


# ---------------------------------------------------------------------------------------------
# Dockerfile parsing
# ---------------------------------------------------------------------------------------------
def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            word, _, args = full.partition(" ")
            instructions.append((word.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return instructions


def dockerfile_stages(path: Path) -> list[tuple[str, str | None]]:
    """(image, stage name) of each FROM, with ARG defaults declared before it substituted."""
    args: dict[str, str] = {}
    stages = []
    for instr, rest in dockerfile_instructions(path):
        if instr == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif instr == "FROM":
            tokens = [t for t in rest.split() if not t.startswith("--")]
            image = interpolate(tokens[0], args)
            name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
            stages.append((image, name))
    return stages


def copy_sources(rest: str) -> tuple[list[str], dict[str, str]]:
    """Sources and --flags of a COPY / ADD instruction (shell or JSON form)."""
    flags: dict[str, str] = {}
    rest = rest.strip()
    while (m := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest)) is not None:
        flags[m.group(1)] = m.group(2) or ""
        rest = rest[m.end() :]
    tokens = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    assert len(tokens) >= 2, f"COPY/ADD needs a source and a destination: {rest!r}"
    return tokens[:-1], flags


def build_specs(raw: dict) -> set[tuple[Path, Path]]:
    specs = set()
    for service in raw["services"].values():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = (REPO / build.get("context", ".")).resolve()
        specs.add((context, (context / build.get("dockerfile", "Dockerfile")).resolve()))
    return specs


# ---------------------------------------------------------------------------------------------
# A subset of the compose-spec JSON schema: the keys this project uses, closed against typos
# (`healtcheck`, `depends-on`) and wrong shapes. Compose itself accepts more.
# ---------------------------------------------------------------------------------------------
_STRING_OR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(us|ms|s|m|h))+$"}
_ENV_MAP = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    ]
}
COMPOSE_SCHEMA_SUBSET = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["services"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-zA-Z0-9._-]+$"},
            "additionalProperties": {"$ref": "#/definitions/service"},
        },
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "networks": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
    "definitions": {
        "service": {
            "type": "object",
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "build": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "properties": {
                                "context": {"type": "string"},
                                "dockerfile": {"type": "string"},
                                "args": _ENV_MAP,
                                "target": {"type": "string"},
                            },
                            "additionalProperties": False,
                        },
                    ]
                },
                "command": _STRING_OR_LIST,
                "entrypoint": _STRING_OR_LIST,
                "environment": _ENV_MAP,
                "env_file": _STRING_OR_LIST,
                "ports": {"type": "array", "items": {"type": ["string", "integer", "object"]}},
                "expose": {"type": "array", "items": {"type": ["string", "integer"]}},
                "volumes": {"type": "array", "items": {"type": ["string", "object"]}},
                "depends_on": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                        {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {
                                    "condition": {
                                        "enum": [
                                            "service_started",
                                            "service_healthy",
                                            "service_completed_successfully",
                                        ]
                                    },
                                    "restart": {"type": "boolean"},
                                    "required": {"type": "boolean"},
                                },
                                "required": ["condition"],
                                "additionalProperties": False,
                            },
                        },
                    ]
                },
                "healthcheck": {
                    "type": "object",
                    "properties": {
                        "test": _STRING_OR_LIST,
                        "interval": _DURATION,
                        "timeout": _DURATION,
                        "start_period": _DURATION,
                        "start_interval": _DURATION,
                        "retries": {"type": "integer", "minimum": 1},
                        "disable": {"type": "boolean"},
                    },
                    "additionalProperties": False,
                },
                "restart": {"type": "string", "pattern": "^(no|always|unless-stopped|on-failure(:[0-9]+)?)$"},
                "user": {"type": "string"},
                "hostname": {"type": "string"},
                "container_name": {"type": "string"},
                "working_dir": {"type": "string"},
                "profiles": {"type": "array", "items": {"type": "string"}},
                "networks": {"type": ["array", "object"]},
                "labels": _ENV_MAP,
                "extra_hosts": {"type": ["array", "object"]},
                "ulimits": {"type": "object"},
                "mem_limit": {"type": ["string", "integer"]},
                "stop_grace_period": _DURATION,
                "init": {"type": "boolean"},
            },
            "patternProperties": {"^x-": {}},
            "additionalProperties": False,
        }
    },
}


# =============================================================================================
# Tests
# =============================================================================================
def test_compose_file_parses_with_the_expected_services(raw):
    assert isinstance(raw, dict), "docker-compose.yml is not a YAML mapping"
    assert isinstance(raw.get("services"), dict) and raw["services"], "docker-compose.yml has no services"
    missing = EXPECTED_SERVICES - set(raw["services"])
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_compose_file_matches_the_compose_spec_subset(raw, filled_env):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA_SUBSET)
    # Compose validates after interpolation, where ${...} may stand for a number.
    errors = sorted(validator.iter_errors(resolve(raw, filled_env)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_compose_schema_subset_rejects_typos():
    """The embedded schema is closed: a misspelled key or an unknown condition fails."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft7Validator(COMPOSE_SCHEMA_SUBSET)
    good = {"services": {"a": {"image": "x", "healthcheck": {"test": ["CMD", "true"], "interval": "10s"}}}}
    assert not list(validator.iter_errors(good))
    for bad in (
        {"services": {"a": {"image": "x", "healtcheck": {"test": ["CMD", "true"]}}}},
        {"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "service_ready"}}}}},
        {"services": {"a": {"image": "x", "healthcheck": {"test": "true", "interval": "10 seconds"}}}},
        {"services": {"a": {"image": "x"}}, "service": {}},
    ):
        assert list(validator.iter_errors(bad)), f"schema subset accepted {bad}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_has_a_healthcheck(raw, name):
    check = raw["services"][name].get("healthcheck")
    assert isinstance(check, dict), f"service {name} has no healthcheck"
    assert not check.get("disable"), f"service {name} disables its healthcheck"
    test = check.get("test")
    if isinstance(test, list):
        assert len(test) >= 2 and test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must be CMD or CMD-SHELL"
        assert all(str(part).strip() for part in test[1:]), f"{name}: empty healthcheck command"
    else:
        assert isinstance(test, str) and test.strip(), f"{name}: empty healthcheck test"


def _published(entry: Any) -> list[tuple[str, int, str]]:
    if isinstance(entry, dict):
        if entry.get("published") is None:
            return []
        return [(entry.get("host_ip", ""), int(entry["published"]), entry.get("protocol", "tcp"))]
    spec, _, proto = str(entry).partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) == 1:  # container port only: Docker picks a free host port
        return []
    ip, host = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])
    if not host:
        return []
    lo, _, hi = host.partition("-")
    return [(ip, port, proto or "tcp") for port in range(int(lo), int(hi or lo) + 1)]


@pytest.mark.parametrize("scenario", ["env_example", "defaults_only"])
def test_host_ports_are_unique(raw, filled_env, scenario):
    env = filled_env if scenario == "env_example" else {}
    seen: dict[tuple[str, int, str], str] = {}
    for name, service in raw["services"].items():
        for entry in service.get("ports") or []:
            entry = resolve(entry, env)  # ports must have defaults: an unset ${...:?} raises here
            for ip, port, proto in _published(entry):
                key = (ip or "0.0.0.0", port, proto)
                assert key not in seen, f"host port {port}/{proto} published by both {seen[key]} and {name}"
                seen[key] = name
    assert seen, "no service publishes a host port"


def test_build_contexts_and_dockerfiles_exist(raw):
    specs = build_specs(raw)
    assert specs, "no service builds an image"
    for context, dockerfile in specs:
        assert context.is_dir(), f"build context {context} does not exist"
        assert dockerfile.is_file(), f"Dockerfile {dockerfile} does not exist"
        assert REPO in dockerfile.parents, f"{dockerfile} lies outside the repository"
    assert {d for _, d in specs} >= {FLINK_DOCKERFILE.resolve(), AIRFLOW_DOCKERFILE.resolve()}


def test_bind_mounts_exist_and_named_volumes_are_declared(raw):
    declared = set(raw.get("volumes") or {})
    binds = 0
    for name, service in raw["services"].items():
        for kind, source, target in volume_mounts(service):
            assert target.startswith("/"), f"{name}: volume target {target!r} is not absolute"
            if kind == "bind":
                assert "$" not in source, f"{name}: bind source {source!r} depends on a variable"
                path = (COMPOSE_FILE.parent / os.path.expanduser(source)).resolve()
                assert path.exists(), f"{name}: bind-mounted host path {source} does not exist"
                assert REPO in path.parents or path == REPO, f"{name}: bind mount {source} outside the repository"
                binds += 1
            else:
                assert source in declared, f"{name}: named volume {source!r} is not declared under volumes:"
    assert binds, "no bind mounts found"


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_services_mount_the_project(raw, name):
    service = raw["services"][name]
    binds = {target: source for kind, source, target in volume_mounts(service) if kind == "bind"}
    for directory in sorted(AIRFLOW_PROJECT_MOUNTS):
        target = f"/opt/airflow/{directory}"
        assert target in binds, f"{name} does not mount ./{directory} at {target}"
        assert Path(binds[target]).parts[-1] == directory and (REPO / directory).is_dir()
    command = AIRFLOW_SERVICES[name]
    if command:
        assert command in command_line(service.get("command")), f"{name} does not run `airflow {command}`"


def test_airflow_components_share_secrets_and_keep_auth_on(resolved):
    shared = (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
    )
    envs = {name: environment(resolved["services"][name]) for name in AIRFLOW_SERVICES}
    for key in shared:
        values = {name: env.get(key) for name, env in envs.items()}
        assert all(values.values()), f"{key} unset in some Airflow service: {values}"
        assert len(set(values.values())) == 1, f"{key} differs between Airflow services: {values}"
    first = next(iter(envs.values()))
    assert first["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert urlsplit(first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname in resolved["services"]
    for name, env in envs.items():
        assert env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false").lower() != "true", (
            f"{name} turns authentication off"
        )
    api_env = envs["airflow-apiserver"]
    assert api_env.get("AIRFLOW_ADMIN_PASSWORD"), "airflow-apiserver gets no admin password"
    assert api_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].startswith(api_env["AIRFLOW_ADMIN_USERNAME"] + ":")


def _references(raw: dict) -> list[tuple[str, str, str]]:
    """(path, variable, operator) of every ${...} / $VAR in the compose file's values."""
    found = []
    for path, value in strings(raw):
        refs: list[tuple[str, str]] = []
        interpolate(value, None, refs)
        found += [(path, name, op) for name, op in refs]
    return found


def test_interpolation_helper_follows_compose_rules():
    refs: list[tuple[str, str]] = []
    text = "a $$HOME ${X} $Y ${Z:-${W:-w}} ${S:?need S} $${KEEP}"
    assert interpolate(text, None, refs) is not None
    assert [name for name, _ in refs] == ["X", "Y", "Z", "W", "S"]
    assert interpolate(text, {"X": "1", "Y": "2", "S": "s"}) == "a $HOME 1 2 w s ${KEEP}"
    assert interpolate("${E-d}|${E:-d}", {"E": ""}) == "|d"
    with pytest.raises(MissingVariable):
        interpolate("${S:?need S}", {"S": ""})


def test_every_variable_is_defined_in_env_example(raw, env_example):
    refs = _references(raw)
    assert refs, "docker-compose.yml references no variables"
    undefined = sorted({f"{name} (at {path})" for path, name, _ in refs if name not in env_example})
    assert not undefined, f"variables used in docker-compose.yml but missing from .env.example: {undefined}"


def test_every_env_example_variable_is_used(raw, env_example):
    used = {name for _, name, _ in _references(raw)}
    unused = sorted(set(env_example) - used)
    assert not unused, f".env.example defines variables docker-compose.yml never uses: {unused}"


def test_secret_variables_are_required(raw):
    """A secret has no default: without .env, compose stops with a message instead of using one."""
    refs = _references(raw)
    secrets = [(path, name, op) for path, name, op in refs if is_secret_name(name)]
    assert secrets, "no secret variables found"
    lax = sorted({f"{name} (at {path}, '{op or 'no operator'}')" for path, name, op in secrets if op != ":?"})
    assert not lax, f"secret variables must be written ${{VAR:?message}}: {lax}"


def test_env_example_holds_placeholders_only(env_example):
    secrets = {key: value for key, value in env_example.items() if is_secret_name(key)}
    assert secrets, ".env.example defines no secrets"
    real = sorted(key for key, value in secrets.items() if value and not value.startswith("change-me"))
    assert not real, f".env.example must hold placeholders (change-me...) or nothing for secrets: {real}"


def test_env_file_is_not_committed():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "--", ".env"], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", ".env (real secrets) is tracked by git; commit .env.example only"


def _secret_literals(text: str) -> Iterator[tuple[str, str]]:
    """(what, value) of credentials written inline in a string: URL user-info, JSON members,
    key: value / key=value lines (the Flink properties), and SQL IDENTIFIED BY."""
    for m in re.finditer(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s]+)@", text, re.I):
        yield "URL password", m.group(1)
    for m in re.finditer(r'"([^"]+)"\s*:\s*"([^"]*)"', text):
        if is_secret_name(m.group(1)):
            yield m.group(1), m.group(2)
    for m in re.finditer(r"(?m)^\s*([\w.-]+)\s*[:=]\s*(\S.*?)\s*$", text):
        if is_secret_name(m.group(1)):
            yield m.group(1), m.group(2)
    for m in re.finditer(r"""\b(MYSQL_PWD|PGPASSWORD)=("?)(\S+?)\2(\s|$)""", text):
        yield m.group(1), m.group(3)
    for m in re.finditer(r"IDENTIFIED\s+(?:WITH\s+\w+\s+)?BY\s+(\S+)", text, re.I):
        yield "IDENTIFIED BY", m.group(1)


def test_no_literal_secrets_in_compose_file(raw):
    offenders = []
    for name, service in raw["services"].items():
        for key, value in environment(service).items():
            if is_secret_name(key) and not value.lstrip("\"'").startswith("$"):
                offenders.append(f"{name}.environment.{key}")
    for path, value in strings(raw):
        for what, literal in _secret_literals(value):
            if not literal.lstrip("\"'").startswith("$"):
                offenders.append(f"{path}: {what} = {literal[:4]}...")
    assert not offenders, "secrets written into docker-compose.yml instead of ${VAR} from .env:\n" + "\n".join(
        offenders
    )


def test_secret_scanner_finds_literals():
    """The scanner the test above relies on catches each way a secret can be written inline."""
    samples = [
        "postgresql+psycopg2://airflow:airflow@postgres/airflow",
        '{"login": "app", "password": "app"}',
        '{"extra": {"s3.secret-key": "minio123"}}',
        "s3.endpoint: http://minio:9000\ns3.secret-key: minio123\n",
        'MYSQL_PWD="hunter2" mysql -h 127.0.0.1',
        "CREATE USER 'a'@'%' IDENTIFIED BY 'pw';",
    ]
    for sample in samples:
        found = [value for _, value in _secret_literals(sample) if not value.lstrip("\"'").startswith("$")]
        assert found, f"scanner missed the secret in {sample!r}"
    assert not [v for _, v in _secret_literals('"password": "${P:?x}", MYSQL_PWD="$${P}"') if not v.startswith("$")]


def test_depends_on_names_existing_services(raw):
    services = raw["services"]
    graph: dict[str, set[str]] = {}
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {dep: {"condition": "service_started"} for dep in deps}
        graph[name] = set(deps)
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on {dep}, which is not a service"
            assert dep != name, f"{name} depends on itself"
            condition = (spec or {}).get("condition", "service_started")
            if condition == "service_completed_successfully":
                assert services[dep].get("restart", "no") == "no", (
                    f"{name} waits for {dep} to complete, but {dep} restarts (restart: {services[dep]['restart']})"
                )
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"

    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        assert node not in visiting, f"depends_on cycle: {' -> '.join(trail + [node])}"
        if node in done:
            return
        visiting.add(node)
        for dep in graph.get(node, ()):
            visit(dep, trail + [node])
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node, [])


def test_one_shot_services_do_not_restart(raw):
    for name in ONE_SHOT:
        assert raw["services"][name].get("restart", "no") == "no", f"{name} runs once and must not restart"
    for name, service in raw["services"].items():
        if name not in ONE_SHOT:
            assert service.get("restart") in ("always", "unless-stopped"), f"{name} should restart unless stopped"


def test_mysql_loads_the_schema_then_the_users(raw):
    mysql = raw["services"]["mysql"]
    assert str(mysql["image"]).startswith("mysql:8.0")
    init = {
        target.rsplit("/", 1)[1]: (REPO / source).resolve()
        for kind, source, target in volume_mounts(mysql)
        if kind == "bind" and target.startswith("/docker-entrypoint-initdb.d/")
    }
    order = sorted(init)  # the entrypoint runs them in name order
    assert [init[n] for n in order][0] == (REPO / "sql/mysql/delivery_schema.sql").resolve(), order
    scripts = [init[n] for n in order[1:] if n.endswith(".sh")]
    assert scripts, "no users/grants script mounted into /docker-entrypoint-initdb.d"
    text = scripts[0].read_text()
    assert "REPLICATION SLAVE" in text and "REPLICATION CLIENT" in text and "MYSQL_CDC_USER" in text
    assert scripts[0].stat().st_mode & stat.S_IXUSR, f"{scripts[0]} is not executable"
    flags = set(mysql["command"])
    assert {"--binlog-format=ROW", "--gtid-mode=ON", "--enforce-gtid-consistency=ON"} <= flags
    assert any(flag.startswith("--server-id=") for flag in flags)


def test_dockerfile_copy_sources_exist(raw):
    checked = 0
    for context, dockerfile in build_specs(raw):
        stage_names = {name for _, name in dockerfile_stages(dockerfile) if name}
        for instr, rest in dockerfile_instructions(dockerfile):
            if instr not in ("COPY", "ADD"):
                continue
            sources, flags = copy_sources(rest)
            if "from" in flags:
                assert flags["from"] in stage_names or ":" in flags["from"], (
                    f"{dockerfile}: unknown stage {flags['from']}"
                )
                continue
            for source in sources:
                assert not source.startswith(("http://", "https://")), f"{dockerfile}: ADD from a URL: {source}"
                matches = glob.glob(str(context / source))
                assert matches, f"{dockerfile.relative_to(REPO)}: COPY source {source} not found in context {context}"
                for match in matches:
                    assert context in Path(match).resolve().parents, f"{dockerfile}: {source} escapes the context"
                checked += 1
    assert checked >= 3, "expected COPY instructions in the Dockerfiles"


def test_dockerfile_parser_handles_continuations_and_flags(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax=docker/dockerfile:1\nARG V=1.2.3\nFROM maven:3 AS jars\n"
        "COPY --chown=a:b x.txt \\\n  y.txt /dst/\nFROM flink:${V}-java17\n"
        'COPY ["a b.txt", "/d/"]\nCOPY --from=jars /jars/ /opt/\n'
    )
    assert dockerfile_stages(dockerfile) == [("maven:3", "jars"), ("flink:1.2.3-java17", None)]
    copies = [copy_sources(rest) for instr, rest in dockerfile_instructions(dockerfile) if instr == "COPY"]
    assert copies == [(["x.txt", "y.txt"], {"chown": "a:b"}), (["a b.txt"], {}), (["/jars/"], {"from": "jars"})]


def test_flink_image_version_matches_pom(pom_versions):
    flink_version = pom_versions["flink.version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", flink_version), flink_version
    stages = dockerfile_stages(FLINK_DOCKERFILE)
    runtime_image = stages[-1][0]
    m = re.fullmatch(r"flink:(\d+\.\d+\.\d+)-java(\d+)", runtime_image)
    assert m, f"the Flink image's last stage must be FROM flink:<version>-java<N>, got {runtime_image}"
    assert m.group(1) == flink_version, (
        f"Dockerfile uses Flink {m.group(1)}, flink/pom.xml flink.version is {flink_version}"
    )
    text = FLINK_DOCKERFILE.read_text()
    assert "dependency:copy-dependencies" in text and "-DexcludeTransitive=true" in text
    # The s3:// warehouse needs Paimon's S3 file system among the jars the Dockerfile copies from the pom.
    artifacts = {
        d.findtext("{http://maven.apache.org/POM/4.0.0}artifactId")
        for d in ET.parse(FLINK_POM).getroot().iter("{http://maven.apache.org/POM/4.0.0}dependency")
    }
    assert "paimon-s3" in artifacts, "flink/pom.xml must bring org.apache.paimon:paimon-s3 for the S3 warehouse"


def test_flink_connector_and_plugin_versions_match_flink(raw, pom_versions):
    flink_version = pom_versions["flink.version"]
    minor = ".".join(flink_version.split(".")[:2])
    root = ET.parse(FLINK_POM).getroot()
    artifacts = [a.text for a in root.iter("{http://maven.apache.org/POM/4.0.0}artifactId")]
    paimon = [a for a in artifacts if a and a.startswith("paimon-flink-")]
    assert paimon == [f"paimon-flink-{minor}"], f"Paimon connector {paimon} does not match Flink {minor}"
    plugins_seen = 0
    for name, service in raw["services"].items():
        plugins = environment(service).get("ENABLE_BUILT_IN_PLUGINS", "")
        for jar in filter(None, plugins.split(";")):
            m = re.fullmatch(r"flink-[a-z0-9-]+?-(\d+\.\d+\.\d+)\.jar", jar)
            assert m and m.group(1) == flink_version, f"{name}: plugin {jar} is not for Flink {flink_version}"
            plugins_seen += 1
    assert plugins_seen, "no Flink service enables the S3 file system plugin"


@pytest.mark.parametrize("name", ["flink-jobmanager", "flink-taskmanager", "flink-sql-gateway"])
def test_flink_services_share_the_image_and_valid_properties(resolved, name):
    service = resolved["services"][name]
    assert service["build"]["dockerfile"] == "docker/flink/Dockerfile"
    properties = environment(service).get("FLINK_PROPERTIES", "")
    keys = {}
    for line in filter(str.strip, properties.splitlines()):
        key, sep, value = line.partition(":")
        assert sep and key.strip() and value.strip(), f"{name}: FLINK_PROPERTIES line {line!r} is not 'key: value'"
        # The image's entrypoint deletes all whitespace of a line before splitting it.
        assert not re.search(r"\s", value.strip()), f"{name}: FLINK_PROPERTIES value with whitespace: {line!r}"
        keys[key.strip()] = value.strip()
    assert keys.get("jobmanager.rpc.address") == "flink-jobmanager"
    assert keys.get("rest.address") == "flink-jobmanager"
    assert urlsplit(keys["s3.endpoint"]).hostname in resolved["services"]
    assert keys["state.checkpoints.dir"].startswith(
        f"s3://{environment(resolved['services']['minio-init'])['MINIO_BUCKET']}/"
    )


def test_airflow_image_matches_requirements():
    requirements = (REPO / "requirements.txt").read_text()
    m = re.search(r"(?m)^apache-airflow==(\S+)\s*$", requirements)
    assert m, "requirements.txt does not pin apache-airflow"
    stages = dockerfile_stages(AIRFLOW_DOCKERFILE)
    image = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", stages[-1][0])
    assert image, f"docker/airflow/Dockerfile must build FROM apache/airflow:<version>-python<X.Y>, got {stages[-1][0]}"
    assert image.group(1) == m.group(1), f"image Airflow {image.group(1)} != requirements.txt {m.group(1)}"
    header = re.search(r"Python (\d+\.\d+)", (REPO / "constraints.txt").read_text().split("\n", 1)[0])
    if header:
        assert image.group(2) == header.group(1), (
            f"image Python {image.group(2)} != constraints.txt's {header.group(1)}"
        )
    text = AIRFLOW_DOCKERFILE.read_text()
    assert re.search(r"pip install .*-r \S*requirements\.txt .*-c \S*constraints\.txt", text), (
        "the Airflow image must install requirements.txt with constraints.txt"
    )


def test_airflow_connections_reach_the_compose_services(resolved, filled_env, monkeypatch):
    """The hooks, reading the AIRFLOW_CONN_* values the containers get, land on the right services."""
    pytest.importorskip("airflow.sdk")
    plugins = str(REPO / "plugins")
    if plugins not in sys.path:
        monkeypatch.syspath_prepend(plugins)
    from lakehouse.hooks.flink import FlinkHook
    from lakehouse.hooks.mysql import MySqlHook
    from lakehouse.hooks.paimon import PaimonHook
    from lakehouse.hooks.starrocks import StarRocksHook

    services = resolved["services"]
    env = environment(services["airflow-scheduler"])
    conns = {key: value for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}
    assert set(conns) >= {
        "AIRFLOW_CONN_LAKEHOUSE_OPS",
        "AIRFLOW_CONN_FLINK_DEFAULT",
        "AIRFLOW_CONN_MYSQL_SOURCE",
        "AIRFLOW_CONN_MYSQL_CDC",
        "AIRFLOW_CONN_PAIMON_DEFAULT",
        "AIRFLOW_CONN_STARROCKS_DEFAULT",
    }
    for key, value in conns.items():
        monkeypatch.setenv(key, value)

    endpoints = FlinkHook().endpoints
    rest, gateway = urlsplit(endpoints.rest_url), urlsplit(endpoints.gateway_url)
    assert rest.hostname == "flink-jobmanager" and rest.port == 8081
    assert gateway.hostname == "flink-sql-gateway" and gateway.port == 8083
    assert "-Dsql-gateway.endpoint.rest.port=8083" in services["flink-sql-gateway"]["command"]

    source = MySqlHook("mysql_source").connection_params()
    cdc = MySqlHook("mysql_cdc").connection_params()
    for params, user, password in (
        (source, filled_env["MYSQL_APP_USER"], filled_env["MYSQL_APP_PASSWORD"]),
        (cdc, filled_env["MYSQL_CDC_USER"], filled_env["MYSQL_CDC_PASSWORD"]),
    ):
        assert (params["host"], params["port"]) == ("mysql", 3306)
        assert params["database"] == filled_env["MYSQL_DATABASE"]
        assert (params["user"], params["password"]) == (user, password)
    assert int(cdc["extra"]["server_id_base"]) == int(filled_env["MYSQL_CDC_SERVER_ID_BASE"])

    options = PaimonHook().catalog_options
    assert options["warehouse"].startswith(f"s3://{filled_env['MINIO_BUCKET']}/")
    assert urlsplit(options["s3.endpoint"]).hostname == "minio"
    # The scoped warehouse user minio-init creates, not MinIO's root.
    assert options["s3.access-key"] == filled_env["MINIO_WAREHOUSE_USER"]
    assert options["s3.secret-key"] == filled_env["MINIO_WAREHOUSE_PASSWORD"]

    # T+1, backfills and maintenance take partition leases in the ops database.
    ops = MySqlHook("lakehouse_ops").connection_params()
    assert (ops["host"], ops["port"]) == ("mysql", 3306)
    assert ops["database"] == environment(services["mysql"])["MYSQL_OPS_DATABASE"] == filled_env["MYSQL_OPS_DATABASE"]
    assert (ops["user"], ops["password"]) == (filled_env["MYSQL_APP_USER"], filled_env["MYSQL_APP_PASSWORD"])

    starrocks = StarRocksHook().connection_params()
    assert (starrocks["host"], starrocks["port"]) == ("starrocks-fe", 9030)
    assert (starrocks["user"], starrocks["password"]) == (
        filled_env["STARROCKS_USER"],
        filled_env["STARROCKS_PASSWORD"],
    )
    init_env = environment(services["starrocks-init"])
    assert (init_env["STARROCKS_USER"], init_env["STARROCKS_PASSWORD"]) == (starrocks["user"], starrocks["password"]), (
        "starrocks-init must create the user the Airflow connection logs in as"
    )


STARROCKS_IMAGE = re.compile(r"starrocks/(fe|be)-ubuntu:(3\.\d+\.\d+)")


def test_starrocks_fe_and_be_run_one_3x_version(raw):
    """StarRocks FE and BE are the official images of one 3.x release; the BE registers with the FE."""
    services = raw["services"]
    versions = {}
    for name, role in (("starrocks-fe", "fe"), ("starrocks-init", "fe"), ("starrocks-be", "be")):
        m = STARROCKS_IMAGE.fullmatch(str(services[name].get("image", "")))
        assert m and m.group(1) == role, (
            f"{name} must run starrocks/{role}-ubuntu:<3.x.y>, got {services[name].get('image')}"
        )
        versions[name] = m.group(2)
    assert len(set(versions.values())) == 1, f"StarRocks FE and BE versions differ: {versions}"
    fe, be = services["starrocks-fe"], services["starrocks-be"]
    assert fe.get("hostname") == "starrocks-fe" and be.get("hostname") == "starrocks-be", (
        "with HOST_TYPE=FQDN the FE and BE register by hostname, which must resolve: the service name"
    )
    assert command_line(fe["command"]).endswith("fe_entrypoint.sh starrocks-fe")
    assert command_line(be["command"]).endswith("be_entrypoint.sh starrocks-fe"), "the BE must register with the FE"
    assert {target for _, _, target in volume_mounts(fe)} == {"/opt/starrocks/fe/meta"}
    assert {target for _, _, target in volume_mounts(be)} == {"/opt/starrocks/be/storage"}
    assert be["depends_on"]["starrocks-fe"]["condition"] == "service_healthy"
    assert be["depends_on"]["starrocks-init"]["condition"] == "service_completed_successfully"
    assert services["starrocks-init"]["depends_on"]["starrocks-fe"]["condition"] == "service_healthy"
    assert any(str(port).endswith(":9030") for port in fe.get("ports") or []), "the FE query port is not published"
    # The BE logs in as root (be_entrypoint.sh) with the password starrocks-init gave root.
    assert environment(be)["MYSQL_PWD"] == environment(services["starrocks-init"])["STARROCKS_ROOT_PASSWORD"]
    # With the LocalExecutor the scheduler runs the refresh tasks: it waits for StarRocks like for Flink.
    assert services["airflow-scheduler"]["depends_on"]["starrocks-be"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_services_get_the_starrocks_connection(raw, name):
    env = environment(raw["services"][name])
    conn = env.get("AIRFLOW_CONN_STARROCKS_DEFAULT", "")
    assert conn, f"{name} has no AIRFLOW_CONN_STARROCKS_DEFAULT"
    assert '"host": "starrocks-fe"' in conn and '"port": 9030' in conn


def _compose_cli() -> list[str] | None:
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) is None:
            continue
        try:
            probe = subprocess.run(candidate + ["version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        # Compose v1 (docker-compose 1.x) predates the compose spec this file uses.
        if probe.returncode == 0 and not re.search(r"version 1\.", probe.stdout):
            return candidate
    return None


COMPOSE_CLI = _compose_cli()


@pytest.mark.skipif(COMPOSE_CLI is None, reason="no `docker compose` client installed")
def test_docker_compose_config_accepts_the_file(tmp_path, filled_env):
    """`docker compose config` validates against the full compose spec; it needs no engine."""
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in filled_env.items()))
    clean_env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    base = COMPOSE_CLI + ["--project-directory", str(REPO), "-f", str(COMPOSE_FILE)]
    ok = subprocess.run(
        base + ["--env-file", str(env_file), "config", "-q"], env=clean_env, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    # .env.example as it is (no Fernet key) must be refused with the variable's name.
    refused = subprocess.run(
        base + ["--env-file", str(ENV_EXAMPLE), "config", "-q"],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "AIRFLOW_FERNET_KEY" in refused.stderr


# ---------------------------------------------------------------------------------------------
# A stack that works and is safe by default
# ---------------------------------------------------------------------------------------------
def _run_script(
    script: Path, env: dict[str, str], tmp_path: Path, fakes: dict[str, str]
) -> subprocess.CompletedProcess:
    """Run one of the compose file's shell scripts with fake clients (mysql, mc) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in fakes.items():
        fake = bin_dir / name
        fake.write_text("#!/bin/sh\n" + body)
        fake.chmod(0o755)
    clean = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LOG": str(tmp_path / "calls.log"),
        "TMPDIR": str(tmp_path),
    }
    shebang = script.read_text().split("\n", 1)[0]
    interpreter = shebang[2:].split() if shebang.startswith("#!") else ["/bin/sh"]
    return subprocess.run(
        [*interpreter, str(script)], env={**clean, **env}, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


def test_mysql_init_creates_the_ops_database_for_the_app_user(resolved, tmp_path):
    """The lakehouse_ops connection's database exists and its user may create the lease table."""
    mysql = resolved["services"]["mysql"]
    assert (MYSQL_INIT.resolve(), "/docker-entrypoint-initdb.d/02-users-and-grants.sh") in {
        ((REPO / source).resolve(), target) for kind, source, target in volume_mounts(mysql) if kind == "bind"
    }
    env = {**environment(mysql), "MYSQL_APP_PASSWORD": "it's-app"}
    done = _run_script(MYSQL_INIT, env, tmp_path, {"mysql": 'cat >> "$LOG"\n'})
    assert done.returncode == 0, done.stderr
    sql = (tmp_path / "calls.log").read_text()
    ops_db, app = env["MYSQL_OPS_DATABASE"], env["MYSQL_APP_USER"]
    assert f"CREATE DATABASE IF NOT EXISTS `{ops_db}`;" in sql
    assert f"GRANT ALL PRIVILEGES ON `{ops_db}`.* TO '{app}'@'%';" in sql
    assert "BY 'it''s-app'" in sql  # quoted, not broken by the quote
    bad = _run_script(MYSQL_INIT, {**env, "MYSQL_OPS_DATABASE": "ops`; DROP"}, tmp_path, {"mysql": "cat >/dev/null\n"})
    assert bad.returncode != 0 and "MYSQL_OPS_DATABASE" in bad.stderr


@pytest.mark.parametrize("scenario", ["env_example", "defaults_only"])
def test_published_ports_bind_to_localhost_by_default(raw, filled_env, scenario):
    """Flink's REST API and SQL Gateway run any job for anyone who reaches them, without a login."""
    env = filled_env if scenario == "env_example" else {}
    published = []
    for name, service in raw["services"].items():
        for entry in service.get("ports") or []:
            for ip, port, _ in _published(resolve(entry, env)):
                published.append(name)
                assert ip == "127.0.0.1", f"{name} publishes host port {port} on {ip or 'every interface'}"
    assert {"flink-jobmanager", "flink-sql-gateway", "airflow-apiserver"} <= set(published)
    assert filled_env.get("BIND_ADDRESS", "127.0.0.1") == "127.0.0.1"


def test_every_service_waits_for_the_secrets_check(raw):
    services = raw["services"]
    check = services[SECRETS_CHECK]
    assert check.get("restart", "no") == "no" and not check.get("depends_on")

    def deps(name: str) -> dict:
        d = services[name].get("depends_on") or {}
        return {k: {"condition": "service_started"} for k in d} if isinstance(d, list) else d

    for name in services:
        if name == SECRETS_CHECK:
            continue
        seen, todo = set(), [name]
        while todo:
            for dep, spec in deps(todo.pop()).items():
                if dep == SECRETS_CHECK:
                    assert spec["condition"] == "service_completed_successfully", f"{name} -> {SECRETS_CHECK}"
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        assert SECRETS_CHECK in seen, f"{name} starts without waiting for {SECRETS_CHECK}"


def test_the_secrets_check_gets_every_secret(raw):
    check = raw["services"][SECRETS_CHECK]
    given = environment(check)
    secrets = {name for _, name, _ in _references(raw) if is_secret_name(name)}
    missing = sorted(name for name in secrets if not given.get(name, "").startswith(f"${{{name}:?"))
    assert not missing, f"{SECRETS_CHECK} does not check: {missing}"
    assert (CHECK_SECRETS.resolve(), "/lakehouse/check-secrets.sh") in {
        ((REPO / source).resolve(), target) for kind, source, target in volume_mounts(check) if kind == "bind"
    }
    assert "/lakehouse/check-secrets.sh" in command_line(check.get("entrypoint")) + command_line(check.get("command"))


def test_the_secrets_check_refuses_placeholders(raw, env_example, tmp_path):
    secrets = {name for _, name, _ in _references(raw) if is_secret_name(name)}
    as_shipped = {name: env_example[name] for name in secrets}
    done = _run_script(CHECK_SECRETS, as_shipped, tmp_path, {})
    assert done.returncode != 0
    for name, value in as_shipped.items():
        assert name in done.stderr, f"{name}={value!r} was not refused"
    good = {name: f"{name.lower()}-0123456789abcdef" for name in secrets}
    assert _run_script(CHECK_SECRETS, good, tmp_path, {}).returncode == 0
    for bad in ("change-me", "change-me-too", ""):
        name = sorted(secrets)[0]
        refused = _run_script(CHECK_SECRETS, {**good, name: bad}, tmp_path, {})
        assert refused.returncode != 0 and name in refused.stderr and ".env" in refused.stderr, bad
        assert bad == "" or bad not in refused.stderr.replace("change-me*", ""), "the check echoes the value"


def test_only_minio_and_its_init_see_the_root_keys(raw):
    for path, name, _ in _references(raw):
        if name.startswith("MINIO_ROOT_"):
            assert path.startswith(("services.minio.", "services.minio-init.", f"services.{SECRETS_CHECK}.")), (
                f"{path} uses MinIO's root key {name}; Flink and Airflow get the scoped warehouse user"
            )


def test_flink_uses_the_scoped_warehouse_user(resolved, filled_env):
    for name in ("flink-jobmanager", "flink-taskmanager", "flink-sql-gateway"):
        properties = dict(
            line.split(":", 1)
            for line in environment(resolved["services"][name])["FLINK_PROPERTIES"].splitlines()
            if line
        )
        assert properties["s3.access-key"].strip() == filled_env["MINIO_WAREHOUSE_USER"], name
        assert properties["s3.secret-key"].strip() == filled_env["MINIO_WAREHOUSE_PASSWORD"], name


def test_minio_init_creates_a_user_limited_to_the_bucket(resolved, tmp_path):
    init = resolved["services"]["minio-init"]
    assert (MINIO_INIT.resolve(), "/lakehouse/init.sh") in {
        ((REPO / source).resolve(), target) for kind, source, target in volume_mounts(init) if kind == "bind"
    }
    env = environment(init)
    fake_mc = 'echo "mc $*" >> "$LOG"\nfor a in "$@"; do case "$a" in *.json) cat "$a" > "$LOG.policy";; esac; done\n'
    done = _run_script(MINIO_INIT, env, tmp_path, {"mc": fake_mc})
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls.log").read_text()
    bucket, user = env["MINIO_BUCKET"], env["MINIO_WAREHOUSE_USER"]
    assert f"mc mb --ignore-existing lakehouse/{bucket}" in calls
    assert f"mc admin user add lakehouse {user} {env['MINIO_WAREHOUSE_PASSWORD']}" in calls
    assert re.search(rf"mc admin policy attach lakehouse (\S+) --user {re.escape(user)}", calls)
    policy = json.loads((tmp_path / "calls.log.policy").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}, resources
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert "s3:*" not in actions and not any(a.startswith("admin:") for a in actions)
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"} <= actions
    same = _run_script(MINIO_INIT, {**env, "MINIO_WAREHOUSE_USER": env["MINIO_ROOT_USER"]}, tmp_path, {"mc": fake_mc})
    assert same.returncode != 0 and "MINIO_WAREHOUSE_USER" in same.stderr


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_data_docs_go_to_a_volume(raw, name):
    service = raw["services"][name]
    target = environment(service).get("LAKEHOUSE_DATA_DOCS")
    assert target, f"{name}: LAKEHOUSE_DATA_DOCS unset: Data Docs would land in the container's .stack/"
    volumes = {t: source for kind, source, t in volume_mounts(service) if kind == "volume"}
    assert target in volumes and volumes[target] in (raw.get("volumes") or {}), f"{name}: {target} is no volume"
    if name == "airflow-init":
        assert target in command_line(service["command"]), "airflow-init must hand the Data Docs volume to AIRFLOW_UID"
