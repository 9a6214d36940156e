"""Write config/container.yaml: the shipped configuration with every secret taken from the
environment, for the image (Dockerfile) and docker-compose.yml.

    .venv/bin/python scripts/container_config.py            # rewrite config/container.yaml
    .venv/bin/python scripts/container_config.py --check    # exit 1 if it is out of date

Every value under a secret-bearing key of ``gateway.config.SECRET_KEYS`` (partners'
credentials and inbound codes, callers' tokens) becomes ``${GATEWAY_…}``, named after its key
(``partners.hebei.inbound.password`` → ``GATEWAY_HEBEI_INBOUND_PASSWORD``); the server listens
on all interfaces with caller authentication on (``server.auth: x-tif``) and the city
platform as its caller; the database is ``GATEWAY_DATABASE_URL``'s. Nothing secret is written
to the file, so nothing secret is in the image: the environment (compose's ``.env``) brings it.
tests/test_containers.py checks the file is what this script writes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import SECRET_KEYS  # noqa: E402

SOURCE = ROOT / "config" / "gateway.yaml"
TARGET = ROOT / "config" / "container.yaml"

HEADER = """\
# The gateway's configuration inside its container (Dockerfile: GATEWAY_CONFIG). Generated from
# config/gateway.yaml by scripts/container_config.py: edit that file and run the script (the test
# suite fails while this one is out of date). Every secret is ${GATEWAY_...}: the environment
# brings it (docker-compose.yml reads .env, see deploy/env.example), never the image. The server
# listens on all interfaces of the container with caller authentication on (x-tif); TLS: mount
# the files read-only and add server.tls / partners.<name>.tls with their paths (README).
"""

#: the city platform, the one caller of the API (its x-tif paasid and token from the environment)
CALLERS = {"city": {"paasid": "BJ-CITY-PLATFORM", "token": "",  # → ${GATEWAY_CALLERS_CITY_TOKEN}
                    "permissions": ["submit", "read"], "items": ["*"], "regions": ["*"]}}


def env_name(path: tuple[str, ...]) -> str:
    """``("partners", "hebei", "inbound", "password")`` → ``GATEWAY_HEBEI_INBOUND_PASSWORD``."""
    parts = path[1:] if path[0] in ("partners", "server") else path
    parts = tuple(p for p in parts if p != "credentials")
    return "GATEWAY_" + "_".join(re.sub(r"[^A-Za-z0-9]", "_", p).upper() for p in parts)


def _walk(node: Any, pattern: tuple[str, ...], path: tuple[str, ...]) -> None:
    if not pattern or not isinstance(node, dict):
        return
    head, rest = pattern[0], pattern[1:]
    for key in list(node) if head == "*" else [head]:
        if key not in node:
            continue
        if rest:
            _walk(node[key], rest, (*path, key))
        elif isinstance(node[key], str):
            node[key] = "${" + env_name((*path, key)) + "}"


def container_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The container's configuration from the shipped one (module docstring)."""
    raw["server"] = {**raw.get("server", {}), "host": "0.0.0.0", "auth": "x-tif"}
    raw["callers"] = CALLERS
    for pattern in SECRET_KEYS:
        _walk(raw, pattern, ())
    return raw


def render() -> str:
    raw = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    return HEADER + yaml.safe_dump(container_config(raw), allow_unicode=True, sort_keys=False,
                                   width=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run {Path(__file__).name}",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
