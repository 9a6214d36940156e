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
        if command is None:
            assert "image" in service, name  # postgres: its image's own command
            continue
        assert command[0] == "gateway" and command[1] in cli.commands, (name, command)
        if command[1] == "simulate":
            simulator_factory(command[2])  # KeyError for a partner with no simulator
            port = int(command[command.index("--port") + 1])
            url_env = f"GATEWAY_PARTNER_{command[2].upper()}_URL"
            url = compose()["services"]["gateway"]["environment"][url_env]
            assert url.startswith(f"http://{name}:{port}/"), (url_env, url)


def test_only_the_authenticated_gateway_publishes_a_port_on_loopback_by_default() -> None:
    services = compose()["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"gateway"}
    for spec in services["gateway"]["ports"]:
        host_ip = str(spec).rsplit(":", 2)[0]
        assert host_ip == "${GATEWAY_PUBLISH_ADDRESS:-127.0.0.1}", spec
        assert str(spec).endswith(f":{load_settings(CONTAINER_CONFIG, env=container_env()).server.port}")
    nets = compose()["networks"]
    for name, s in services.items():
        if name != "gateway":  # unauthenticated services only on the internal network
            assert s["networks"] == ["backend"], name
    assert nets["backend"]["internal"] is True


def test_postgres_requires_a_password_from_the_environment() -> None:
    pg = compose()["services"]["postgres"]["environment"]
    assert "POSTGRES_HOST_AUTH_METHOD" not in pg
    assert _REF.fullmatch(pg["POSTGRES_PASSWORD"])


def test_compose_supplies_every_variable_the_container_config_reads() -> None:
    env = compose()["services"]["gateway"]["environment"]
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
