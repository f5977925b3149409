"""Static checks of the production ``docker-compose.yml`` (and the image it builds).

No Docker engine and no network: the compose file is parsed with ``yaml.safe_load`` and
validated against the official Compose Specification JSON schema vendored in
``tests/schemas/compose-spec.json`` (see ``tests/schemas/README.md``), then checked for the
shape the deployment relies on: health-gated start order, the GPU reservation of the
worker, declared volumes and no hard-coded secrets.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_FILE = SCHEMA_DIR / "compose-spec.json"
SCHEMA_README = SCHEMA_DIR / "README.md"

EXPECTED_SERVICES = {"redis", "postgres", "worker", "bot"}
# Started only with `--profile monitoring`.
MONITORING_SERVICES = {"prometheus", "grafana"}
EXPECTED_VOLUMES = {
    "redis-data",
    "postgres-data",
    "models",
    "bot-data",
    "prometheus-data",
    "grafana-data",
}
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"

# ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and the `$$` escape: the subset of Compose
# interpolation this file may use. Anything else (`:?`, `:+`, nesting) is rejected below.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^${}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# A whole value that is exactly one interpolation, e.g. "${BOT_DISCORD_TOKEN:-}".
_WHOLE_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-(?P<default>[^${}]*))?\}$")
_SECRET_KEY = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|PRIVATE_KEY)$", re.IGNORECASE)
# Defaults a secret-bearing variable may fall back to: nothing, or an obvious placeholder.
_PLACEHOLDER_DEFAULTS = {"", "change-me", "changeme"}
_URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://(?P<user>[^:/@]*):(?P<password>[^@]*)@", re.I)
# Shapes of real chat-platform tokens, in case one gets pasted anywhere in the file.
_TOKEN_LITERALS = {
    "Discord token": re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    "Telegram token": re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b"),
}


# --------------------------------------------------------------------------- helpers


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Resolve Compose variable interpolation in every string of ``value`` like Compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, default = match["op"], match["default"] or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    assert "$" not in _INTERPOLATION.sub("", value), f"unsupported interpolation in {value!r}"
    return _INTERPOLATION.sub(replace, value)


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's ``environment`` as a mapping, whichever of the two syntaxes it uses."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for entry in env:
        key, sep, val = str(entry).partition("=")
        result[key] = val if sep else None
    return result


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """``depends_on`` as {service: condition}; the short (list) form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def named_volume_sources(service: dict[str, Any]) -> list[str]:
    """The named volumes a service mounts (bind mounts and tmpfs excluded)."""
    names = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, str):
            source = mount.split(":", 1)[0] if ":" in mount else ""
            if source and not source.startswith(("/", ".", "~", "$")):
                names.append(source)
        elif mount.get("type", "volume") == "volume" and mount.get("source"):
            names.append(mount["source"])
    return names


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Short-syntax volume entries as (source, target, mode)."""
    result = []
    for mount in service.get("volumes") or []:
        assert isinstance(mount, str), f"expected short volume syntax, got {mount!r}"
        source, target, *mode = mount.split(":")
        result.append((source, target, mode[0] if mode else "rw"))
    return result


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "service has no command"
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def healthcheck_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return False
    test = check.get("test")
    return bool(test) and test != ["NONE"]


def secret_problems(compose: dict[str, Any]) -> list[str]:
    """Every place where a credential is written into the file instead of interpolated."""
    problems = []
    for name, service in (compose.get("services") or {}).items():
        for key, value in environment(service).items():
            if value is None:  # `- KEY` alone: passed through from the host; fine
                continue
            if _SECRET_KEY.search(key):
                whole = _WHOLE_INTERPOLATION.match(value)
                if not whole:
                    problems.append(f"{name}.{key} is a literal, not a ${{...}} interpolation")
                elif (whole["default"] or "") not in _PLACEHOLDER_DEFAULTS:
                    problems.append(f"{name}.{key} defaults to a real-looking secret")
            # Parse URLs with each interpolation swapped for an opaque marker, so that the
            # `:` in `${VAR:-default}` is not mistaken for the user:password separator.
            pieces: list[str] = []

            def mark(match: re.Match[str], pieces: list[str] = pieces) -> str:
                pieces.append(match[0])
                return f"\x00{len(pieces) - 1}\x00"

            credentials = _URL_CREDENTIALS.match(_INTERPOLATION.sub(mark, value))
            if credentials:
                marker = re.fullmatch(r"\x00(\d+)\x00", credentials["password"])
                whole = marker and _WHOLE_INTERPOLATION.match(pieces[int(marker[1])])
                if not whole or (whole["default"] or "") not in _PLACEHOLDER_DEFAULTS:
                    problems.append(f"{name}.{key} embeds a literal password in a URL")
    text = yaml.safe_dump(compose)
    for label, pattern in _TOKEN_LITERALS.items():
        if pattern.search(text):
            problems.append(f"a {label} is written into the file")
    return problems


def schema_errors(validator: Any, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# --------------------------------------------------------------------------- the schema


def test_vendored_schema_is_verbatim_and_declares_its_draft(schema: dict[str, Any]) -> None:
    recorded = re.search(r"SHA-256\s+`([0-9a-f]{64})`", SCHEMA_README.read_text(encoding="utf-8"))
    assert recorded, "tests/schemas/README.md must record the schema's SHA-256"
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == recorded[1], (
        "compose-spec.json differs from the vendored upstream copy; refresh it as the README says"
    )
    assert schema["title"] == "Compose Specification"
    assert validator_for(schema, default=None) is jsonschema.Draft202012Validator


def test_compose_file_is_valid_against_compose_spec(
    compose: dict[str, Any], validator: Any
) -> None:
    assert schema_errors(validator, compose) == []
    # Compose validates after interpolation too: defaults only, and with values set.
    assert schema_errors(validator, interpolate(compose, {})) == []
    env = {
        "POSTGRES_USER": "u",
        "POSTGRES_PASSWORD": "p",
        "POSTGRES_DB": "d",
        "BOT_MODEL_FILE": "m.gguf",
        "BOT_DISCORD_TOKEN": "x",
        "BOT_TELEGRAM_TOKEN": "y",
    }
    assert schema_errors(validator, interpolate(compose, env)) == []


def test_validator_accepts_a_minimal_valid_file(validator: Any) -> None:
    # Control for the negative test below: rejections there are not "rejects everything".
    assert schema_errors(validator, {"services": {"bot": {"image": "x", "ports": ["80:80"]}}}) == []


@pytest.mark.parametrize(
    ("document", "bad_path"),
    [
        ({"services": {"bot": {"image": 5}}}, "services/bot/image"),
        ({"services": {"bot": {"image": "x", "ports": "x"}}}, "services/bot/ports"),
        ({"services": {"bot": {"image": "x"}}, "servicez": {}}, "<root>"),
        ({"services": {"bot": {"image": "x", "restart_policy": "always"}}}, "services/bot"),
        (
            {"services": {"bot": {"image": "x", "depends_on": {"db": {"condition": "ready"}}}}},
            "services/bot/depends_on",
        ),
        (
            {
                "services": {
                    "w": {
                        "image": "x",
                        "deploy": {
                            "resources": {"reservations": {"devices": [{"driver": "nvidia"}]}}
                        },
                    }
                }
            },
            "services/w/deploy/resources/reservations/devices/0",
        ),
    ],
    ids=[
        "image-not-string",
        "ports-not-list",
        "unknown-top-level-key",
        "unknown-service-key",
        "bad-depends-on-condition",
        "gpu-device-without-capabilities",
    ],
)
def test_validator_rejects_broken_files(validator: Any, document: Any, bad_path: str) -> None:
    errors = schema_errors(validator, document)
    assert errors, f"schema accepted an invalid compose file: {document!r}"
    assert any(error.startswith(f"{bad_path}:") for error in errors), errors


def test_validator_rejects_a_broken_copy_of_the_real_file(
    compose: dict[str, Any], validator: Any
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["bot"]["ports"] = "x"
    broken["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"][0][
        "capabilities"
    ] = "gpu"
    broken["volumez"] = {}
    errors = schema_errors(validator, broken)
    assert any(e.startswith("services/bot/ports:") for e in errors), errors
    assert any("devices/0/capabilities:" in e for e in errors), errors
    assert any(e.startswith("<root>:") and "volumez" in e for e in errors), errors


# --------------------------------------------------------------------------- services


def test_expected_services_and_restart_policy(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED_SERVICES | MONITORING_SERVICES
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", f"{name} must restart unless-stopped"
        profiles = set(service.get("profiles") or [])
        assert profiles == ({"monitoring"} if name in MONITORING_SERVICES else set()), name


def test_bot_and_worker_are_health_checked_on_their_status_port(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, port in (("bot", "9300"), ("worker", "9400")):
        service = services[name]
        assert healthcheck_test(service) == f"CMD python -m inference.status_http {port}"
        assert port in [str(p) for p in service["expose"]], f"{name} must expose {port}"
    assert environment(services["bot"])["BOT_STATUS_PORT"] == "9300"
    argv = command_argv(services["worker"])
    assert argv[argv.index("--metrics-port") + 1] == "9400"


def test_prometheus_scrapes_every_bot_and_worker_replica() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in (("bot", 9300), ("worker", 9400)):
        # DNS discovery on the service name finds every replica (`--scale`).
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery["names"] == [name] and discovery["port"] == port


def test_redis_service(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    argv = command_argv(redis)
    assert "--appendonly" in argv and argv[argv.index("--appendonly") + 1] == "yes"
    assert ("redis-data", "/data", "rw") in mounts(redis)
    assert "redis-cli ping" in healthcheck_test(redis)


def test_postgres_service(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert re.fullmatch(r"pgvector/pgvector:pg1[67]", postgres["image"])
    env = environment(postgres)
    for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert env.get(key) and _WHOLE_INTERPOLATION.match(env[key] or ""), key
    assert ("postgres-data", "/var/lib/postgresql/data", "rw") in mounts(postgres)
    check = healthcheck_test(postgres)
    assert "pg_isready" in check and " -U " in check and " -d " in check


def test_every_service_is_health_gated(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        deps = depends_on(service)
        for target, condition in deps.items():
            if condition == "service_healthy":
                assert has_healthcheck(services[target]), (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )
        if not has_healthcheck(service):
            assert "service_healthy" in deps.values(), (
                f"{name} has no healthcheck and waits for no healthy dependency"
            )


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert depends_on(services["redis"]) == {}
    assert depends_on(services["postgres"]) == {}
    assert depends_on(services["worker"]) == {"redis": "service_healthy"}
    assert depends_on(services["bot"]) == {
        "redis": "service_healthy",
        "postgres": "service_healthy",
        "worker": "service_started",
    }


def test_depends_on_targets_exist_and_have_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    graph = {name: set(depends_on(service)) for name, service in services.items()}
    for name, targets in graph.items():
        assert targets <= set(services), f"{name} depends on unknown {targets - set(services)}"
        assert name not in targets, f"{name} depends on itself"
    # Kahn's algorithm: every service must become startable.
    remaining = dict(graph)
    while remaining:
        ready = [name for name, targets in remaining.items() if not targets & set(remaining)]
        assert ready, f"dependency cycle among {sorted(remaining)}"
        for name in ready:
            del remaining[name]


def test_worker_reserves_nvidia_gpus(services: dict[str, dict[str, Any]]) -> None:
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    gpus = [d for d in devices if d.get("driver") == "nvidia" and "gpu" in d["capabilities"]]
    assert len(gpus) == 1, devices
    count = gpus[0].get("count", "all")
    assert count == "all" or (isinstance(count, int) and count >= 1), count
    # Only the worker needs a GPU.
    for name, service in services.items():
        if name != "worker":
            assert "deploy" not in service, f"{name} should not reserve devices"


def test_worker_command_and_model_mount(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    argv = command_argv(worker)
    assert argv[:3] == ["python", "-m", "inference.worker"]

    def option(flag: str) -> str:
        assert flag in argv, f"worker command lacks {flag}"
        return argv[argv.index(flag) + 1]

    assert option("--slots") == "8"
    assert option("--gpu-layers") == "-1"
    model = option("--model")
    assert model == "/models/${BOT_MODEL_FILE:-model.gguf}"
    assert interpolate(model, {}) == "/models/model.gguf"
    assert interpolate(model, {"BOT_MODEL_FILE": "q4.gguf"}) == "/models/q4.gguf"
    assert ("models", "/models", "ro") in mounts(worker), "models must be mounted read-only"
    assert environment(worker)["BOT_REDIS_URL"] == "redis://redis:6379/0"


def test_bot_environment(services: dict[str, dict[str, Any]]) -> None:
    bot = services["bot"]
    assert command_argv(bot) == ["python", "-m", "bot", "serve"]
    env = environment(bot)
    assert env["BOT_REDIS_URL"] == "redis://redis:6379/0"
    assert env["BOT_EMBEDDED_WORKER"] == "false"
    assert env["BOT_DISCORD_TOKEN"] == "${BOT_DISCORD_TOKEN:-}"
    assert env["BOT_TELEGRAM_TOKEN"] == "${BOT_TELEGRAM_TOKEN:-}"
    data_dir = env["BOT_DATA_DIR"]
    assert ("bot-data", data_dir, "rw") in mounts(bot), "BOT_DATA_DIR must be the bot-data mount"


@pytest.mark.parametrize(
    "host_env",
    [{}, {"POSTGRES_USER": "alice", "POSTGRES_PASSWORD": "s3cr3t", "POSTGRES_DB": "docs"}],
    ids=["defaults", "from-host"],
)
def test_database_url_matches_postgres_credentials(
    compose: dict[str, Any], host_env: dict[str, str]
) -> None:
    resolved = interpolate(compose, host_env)["services"]
    pg = environment(resolved["postgres"])
    url = environment(resolved["bot"])["BOT_DATABASE_URL"]
    assert url == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{pg['POSTGRES_DB']}"
    )
    for key, value in host_env.items():
        assert pg[key] == value


def test_tokens_pass_through_from_host(compose: dict[str, Any]) -> None:
    unset = environment(interpolate(compose, {})["services"]["bot"])
    assert unset["BOT_DISCORD_TOKEN"] == "" and unset["BOT_TELEGRAM_TOKEN"] == ""
    host = {"BOT_DISCORD_TOKEN": "d-token", "BOT_TELEGRAM_TOKEN": "t-token"}
    passed = environment(interpolate(compose, host)["services"]["bot"])
    assert passed["BOT_DISCORD_TOKEN"] == "d-token"
    assert passed["BOT_TELEGRAM_TOKEN"] == "t-token"


# --------------------------------------------------------------------------- volumes, secrets


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = {
        volume
        for service in compose["services"].values()
        for volume in named_volume_sources(service)
    }
    assert used <= declared, f"undeclared named volumes: {sorted(used - declared)}"
    assert declared <= used, f"declared but unused volumes: {sorted(declared - used)}"
    assert declared == EXPECTED_VOLUMES


def test_no_hard_coded_secrets(compose: dict[str, Any]) -> None:
    assert secret_problems(compose) == []
    # Every password/token the services receive is an interpolation somewhere.
    secret_keys = {
        key
        for service in compose["services"].values()
        for key in environment(service)
        if _SECRET_KEY.search(key)
    }
    assert {"POSTGRES_PASSWORD", "BOT_DISCORD_TOKEN", "BOT_TELEGRAM_TOKEN"} <= secret_keys


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("bot", "BOT_DISCORD_TOKEN", "hunter2"),
        ("bot", "BOT_TELEGRAM_TOKEN", "${BOT_TELEGRAM_TOKEN:-123456789:AAHk0Zz}"),
        ("postgres", "POSTGRES_PASSWORD", "postgres"),
        ("bot", "BOT_DATABASE_URL", "postgresql://bot:hunter2@postgres:5432/bot"),
        ("bot", "BOT_DATABASE_URL", "postgresql://${POSTGRES_USER:-bot}:hunter2@postgres/bot"),
        ("bot", "BOT_DATABASE_URL", "postgresql://u:${POSTGRES_PASSWORD:-hunter2}@postgres/bot"),
        (
            "bot",
            "BOT_LOG_LEVEL",
            "MTAxNzI4Mzk0NTY3ODkwMTIzNA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123",
        ),
    ],
    ids=[
        "literal-token",
        "secret-default",
        "literal-password",
        "url-password",
        "url-password-after-interpolated-user",
        "url-password-secret-default",
        "token-elsewhere",
    ],
)
def test_secret_check_catches_literals(
    compose: dict[str, Any], service: str, key: str, value: str
) -> None:
    leaked = copy.deepcopy(compose)
    leaked["services"][service]["environment"][key] = value
    assert secret_problems(leaked), f"{service}.{key}={value!r} was not flagged"


# --------------------------------------------------------------------------- image build


def test_builds_use_the_repo_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    declared_args = set(re.findall(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", dockerfile, re.M))
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{?BASE_IMAGE\}?$", dockerfile, re.M)
    assert "CMAKE_ARGS" in declared_args
    for name in ("worker", "bot"):
        build = services[name]["build"]
        assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")) == DOCKERFILE
        args = build.get("args") or {}
        assert set(args) <= declared_args, f"{name} passes undeclared build args"
    worker_args = services["worker"]["build"]["args"]
    assert "-DGGML_CUDA=on" in worker_args["CMAKE_ARGS"]
    assert re.fullmatch(r"nvidia/cuda:[\w.-]*devel[\w.-]*", worker_args["BASE_IMAGE"])


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".data", ".env"} <= ignored
    assert not {"pyproject.toml", "README.md", "bot", "inference"} & ignored
