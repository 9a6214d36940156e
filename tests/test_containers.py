"""The Dockerfile and docker-compose.yml checked against the code (there is no Docker engine on
the development machines): every command, port, variable and file they name exists; nothing
listens on all interfaces without caller authentication; no secret is written in either (nor in
config/gateway.yaml, the image's configuration); a missing secret stops start-up naming it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main as cli
from gateway.cli.serve import exposure_problem
from gateway.config import SECRET_KEYS, ServerSettings, load_settings
from gateway.errors import ConfigError
from gateway.simulators import simulator_factory
from tests.harness import ROOT, edit_config, write_config

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
CONTAINER_CONFIG = ROOT / "config" / "gateway.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return doc


def gateways() -> dict[str, dict[str, Any]]:
    """The gateway instances: the services built from this project running ``gateway serve``."""
    return {n: s for n, s in compose()["services"].items()
            if s.get("command", [None, None])[:2] == ["gateway", "serve"]}


def gateway_service() -> dict[str, Any]:
    return compose()["services"]["gateway-a"]


def exec_form(args: str) -> list[str]:
    return list(yaml.safe_load(args)) if args.startswith("[") else shlex.split(args)


#: the keys that hold secrets proper (ids such as usernames also come from the environment, but
#: may appear elsewhere in a contract, e.g. Hebei's senderCode)
SECRET_NAMES = {"password", "token", "auth_code", "secret"}


def shipped_secret_values() -> set[str]:
    """Every secret of the shipped (demo) configuration."""
    raw = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    found: set[str] = set()

    def walk(node: Any, pattern: tuple[str, ...]) -> None:
        if not pattern or not isinstance(node, dict):
            return
        head, rest = pattern[0], pattern[1:]
        for key in list(node) if head == "*" else [head]:
            if key in node:
                if rest:
                    walk(node[key], rest)
                elif isinstance(node[key], str) and key in SECRET_NAMES \
                        and not _REF.fullmatch(node[key]):  # a reference is no secret
                    found.add(node[key])
    for pattern in SECRET_KEYS:
        walk(raw, pattern)
    return found


def container_env() -> dict[str, str]:
    """Placeholder values for every variable the image's configuration reads (≥16 characters)."""
    text = "\n".join(line for line in CONTAINER_CONFIG.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))
    names = set(_REF.findall(text))
    return {n: f"placeholder-value-{n.lower()}" for n in names if n != "GATEWAY_"}


# -- the Dockerfile ------------------------------------------------------------------------------

def test_dockerfile_copies_files_that_exist_and_no_secret_config() -> None:
    copies = [exec_form(args) for word, args in dockerfile() if word == "COPY"]
    assert copies
    for args in copies:
        for src in args[:-1]:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
    sources = {src for args in copies for src in args[:-1]}
    assert "config/gateway.yaml" in sources
    assert not (ROOT / ".dockerignore").exists() or ".env" in (ROOT / ".dockerignore").read_text()
    assert not any(src in (".", "./") for src in sources)  # never the whole tree (.env, data/)


def test_dockerfile_runs_gateway_serve_authenticated_and_sets_no_secret() -> None:
    instructions = dockerfile()
    assert not [a for w, a in instructions if w in ("ENV", "ARG")]  # secrets come at run time
    [cmd] = [exec_form(a) for w, a in instructions if w == "CMD"]
    assert cmd[:2] == ["gateway", "serve"] and cmd[1] in cli.commands
    [expose] = [a for w, a in instructions if w == "EXPOSE"]
    s = load_settings(CONTAINER_CONFIG, env=container_env())
    assert int(expose) == s.server.port
    host = cmd[cmd.index("--host") + 1] if "--host" in cmd else s.server.host
    assert host == "0.0.0.0"
    assert s.server.auth != "off" and exposure_problem(s.server, host) is None


# -- docker-compose.yml --------------------------------------------------------------------------

def test_compose_commands_exist() -> None:
    for name, service in compose()["services"].items():
        command = service.get("command")
        if "image" in service:  # postgres, prometheus, grafana: their images' own programs
            continue
        assert command is not None, name
        assert command[0] == "gateway" and command[1] in cli.commands, (name, command)
        if command[1] == "simulate":
            simulator_factory(command[2])  # KeyError for a partner with no simulator
            port = int(command[command.index("--port") + 1])
            url_env = f"GATEWAY_PARTNER_{command[2].upper()}_URL"
            url = gateway_service()["environment"][url_env]
            assert url.startswith(f"http://{name}:{port}/"), (url_env, url)


#: services with their own login that may publish a port (besides the gateway instances)
LOGIN_SERVICES = {"grafana"}


def test_only_authenticated_services_publish_a_port_on_loopback_by_default() -> None:
    services = compose()["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == set(gateways()) | LOGIN_SERVICES
    port = load_settings(CONTAINER_CONFIG, env=container_env()).server.port
    host_ports = []
    for name in published:
        for spec in services[name]["ports"]:
            host_ip, host_port, container = str(spec).rsplit(":", 2)
            assert host_ip == "${GATEWAY_PUBLISH_ADDRESS:-127.0.0.1}", spec
            if name in gateways():
                assert int(container) == port, spec
            host_ports.append(host_port)
    assert len(host_ports) == len(set(host_ports)), host_ports  # no two on one host port
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    nets = compose()["networks"]
    for name, s in services.items():
        if name not in published:  # unauthenticated services only on the internal network
            assert s["networks"] == ["backend"], name
    assert nets["backend"]["internal"] is True


def test_compose_commands_use_options_the_cli_has() -> None:
    """Each ``gateway …`` command's options, against the real CLI's ``--help``."""
    for name, service in compose()["services"].items():
        command = service.get("command")
        if not command or command[0] != "gateway":
            continue
        result = CliRunner().invoke(cli, [command[1], "--help"])
        assert result.exit_code == 0, result.output
        for option in (a for a in command[2:] if a.startswith("--")):
            assert re.search(rf"(^|[\s,]){re.escape(option)}\b", result.output), (name, option)


def test_images_are_built_here_or_pinned() -> None:
    for name, s in compose()["services"].items():
        if "build" in s:
            assert (ROOT / s["build"] / "Dockerfile").exists(), name
            continue
        image, _, tag = s["image"].partition(":")
        assert re.fullmatch(r"v?\d+(\.\d+)*", tag), f"{name}: image {s['image']} not pinned"
    # the rules are checked by promtool 2.x where installed (tests/test_dashboards.py)
    assert compose()["services"]["prometheus"]["image"].split(":")[1].startswith("v2.")


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """container path → project file, of a service's bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        source, target = str(v).split(":")[:2]
        if source.startswith("."):
            out[target] = ROOT / source
    return out


def test_prometheus_scrapes_both_gateway_instances_with_the_rules_mounted() -> None:
    services = compose()["services"]
    prom = services["prometheus"]
    mounts = _mounts(prom)
    [config_at] = [a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file=")]
    config_file = mounts[config_at]
    assert config_file == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    for rules in config["rule_files"]:
        assert rules in mounts and mounts[rules].is_file(), rules
    port = load_settings(CONTAINER_CONFIG, env=container_env()).server.port
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "gateway"]
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{name}:{port}" for name in gateways()}
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert set(prom["networks"]) <= set(services["gateway-a"]["networks"])


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard() -> None:
    services = compose()["services"]
    mounts = _mounts(services["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    [ds] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml")
                          .read_text(encoding="utf-8"))["datasources"]
    listen = [a for a in services["prometheus"]["command"] if a.startswith("--web.listen")]
    assert not listen and ds["url"] == "http://prometheus:9090"  # Prometheus's default port
    assert ds["type"] == "prometheus" and "prometheus" in services
    [provider] = yaml.safe_load((provisioning / "dashboards" / "gateway.yml")
                                .read_text(encoding="utf-8"))["providers"]
    folder = provider["options"]["path"]
    dashboards = {t: f for t, f in mounts.items() if t.startswith(folder + "/")}
    assert dashboards and all(f.is_file() for f in dashboards.values())
    assert ROOT / "deploy" / "grafana" / "gateway-dashboard.json" in dashboards.values()


def test_postgres_requires_a_password_from_the_environment() -> None:
    pg = compose()["services"]["postgres"]["environment"]
    assert "POSTGRES_HOST_AUTH_METHOD" not in pg
    assert _REF.fullmatch(pg["POSTGRES_PASSWORD"])


def test_compose_supplies_every_variable_the_container_config_reads() -> None:
    assert len(gateways()) == 2
    a, b = gateways().values()
    assert a["environment"] == b["environment"] and a["command"] == b["command"]
    env = gateway_service()["environment"]
    needed = set(container_env())
    assert needed <= set(env), needed - set(env)
    partners = load_settings(CONTAINER_CONFIG, env=container_env()).partners
    known_overrides = {"GATEWAY_DATABASE_URL"} | {
        f"GATEWAY_PARTNER_{p.upper().replace('-', '_')}_URL" for p in partners}
    assert set(env) <= needed | known_overrides, set(env) - needed - known_overrides
    for name in needed:  # secrets come from .env, never written here
        assert _REF.fullmatch(env[name]), (name, env[name])


def test_every_variable_compose_interpolates_is_in_the_documented_example() -> None:
    used = set(_REF.findall(COMPOSE.read_text(encoding="utf-8").split("\nservices:", 1)[1]))
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text(encoding="utf-8")
                   .splitlines() if line and not line.startswith("#"))
    assert used <= set(example), used - set(example)
    assert all(v == "" for v in example.values())  # names only: no value, no secret
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_files_named_by_volumes_exist() -> None:
    for name, s in compose()["services"].items():
        for volume in s.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), (name, volume)


@pytest.mark.parametrize("path", [DOCKERFILE, COMPOSE, CONTAINER_CONFIG])
def test_no_secret_is_written_in(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for value in shipped_secret_values():
        assert value not in text, f"{path.name} holds the configured secret {value[:4]}…"
    # every value under a secret-ish key is a reference, never a literal
    for key, value in re.findall(r"(?im)^\s*-?\s*([A-Z_]*(?:PASSWORD|TOKEN|SECRET|AUTH_CODE|"
                                 r"password|token|secret|auth_code))\s*[:=]\s*(\S.*)$", text):
        value = re.sub(r"\s+#.*$", "", value)  # a YAML comment after the value is not part of it
        assert _REF.fullmatch(value.strip().strip("'\"")) or value.strip() == '""', (key, value)


# -- the image's configuration -------------------------------------------------------------------

def test_container_config_names_the_missing_secret() -> None:
    env = container_env()
    del env["GATEWAY_HEBEI_INBOUND_PASSWORD"]
    with pytest.raises(ConfigError) as e:
        load_settings(CONTAINER_CONFIG, env=env)
    assert e.value.key == "partners.hebei.inbound.password"
    assert "GATEWAY_HEBEI_INBOUND_PASSWORD" in str(e.value)


def test_container_config_reads_tls_files_from_the_environment(tmp_path: Path) -> None:
    env = {**container_env(), "GATEWAY_TLS_CERT_FILE": "/run/gateway/tls/server.crt",
           "GATEWAY_TLS_KEY_FILE": "/run/gateway/tls/server.key",
           "GATEWAY_TLS_CLIENT_CA_FILE": "/run/gateway/tls/callers-ca.crt"}
    tls = load_settings(CONTAINER_CONFIG, env=env).server.tls
    assert tls is not None and tls.client_certs == "required"
    assert tls.key_file == "/run/gateway/tls/server.key"


# -- gateway serve refuses to expose an unauthenticated API ------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_exposure_guard(host: str) -> None:
    assert exposure_problem(ServerSettings(auth="off"), host) is not None
    assert exposure_problem(ServerSettings(auth="x-tif"), host) is None
    assert exposure_problem(ServerSettings(auth="off"), "127.0.0.1") is None


def test_serve_refuses_all_interfaces_with_auth_off(tmp_path: Path) -> None:
    config = edit_config(write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", {}),
                         lambda raw: raw["server"].update(auth="off"))
    result = CliRunner().invoke(cli, ["serve", "--config", str(config), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "server.auth: off" in lines[0] and "0.0.0.0" in lines[0], \
        result.output
