"""Frozen settings: one YAML file, environment overrides for secrets and URLs, validated at start.

A broken file fails at start-up with the file, the key and the reason (``ConfigError``), never at
the first message. Environment overrides:

* ``GATEWAY_DATABASE_URL`` — ``database.url``
* ``GATEWAY_HOST`` / ``GATEWAY_PORT`` — ``server.host`` / ``server.port``
* ``GATEWAY_PARTNER_<NAME>_URL`` — a partner's ``url`` (``NAME`` upper-cased, ``-`` → ``_``)
* a credential value written as ``${ENV_NAME}`` is read from the environment at load.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "gateway.yaml"
_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0)


class DatabaseSettings(_Frozen):
    url: str = "sqlite+aiosqlite:///data/gateway.db"
    auto_migrate: bool = True
    pool_size: int = Field(10, ge=1)


class WorkerSettings(_Frozen):
    enabled: bool = True
    poll_interval: float = Field(0.5, gt=0)
    batch_size: int = Field(20, ge=1)
    concurrency: int = Field(8, ge=1)
    lease_seconds: float = Field(60.0, gt=0)


class RetrySettings(_Frozen):
    """Bounded schedule in seconds between attempts; the last wait repeats until max_attempts."""

    schedule: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    max_attempts: int = Field(6, ge=1)


class PartnerSettings(_Frozen):
    """One partner: which protocol style, where, which mapping, and its credentials.

    ``options`` belong to the protocol style and are validated by its client factory.
    """

    protocol: str
    url: str
    mapping: str
    mapping_version: str | None = None
    timeout: float = Field(10.0, gt=0)
    items_per_message: Literal["one", "many"] = "one"
    credentials: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    retry: RetrySettings = RetrySettings()


class Settings(_Frozen):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    worker: WorkerSettings = WorkerSettings()
    home_region: str = "110000"
    mappings_dir: str = "mappings"
    schemas_dir: str = "schemas"
    partners: dict[str, PartnerSettings] = Field(default_factory=dict)
    routes: list[dict[str, Any]] = Field(default_factory=list)
    source_file: str | None = None

    @field_validator("home_region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.fullmatch(r"\d{6}(\d{6})?", v):
            raise ValueError("must be a 6- or 12-digit region code")
        return v

    def path(self, relative: str) -> Path:
        """Resolve a path named in the file relative to the file's own folder's parent."""
        p = Path(relative)
        if p.is_absolute() or self.source_file is None:
            return p
        return Path(self.source_file).resolve().parent.parent / p


def _apply_env(raw: dict[str, Any], env: dict[str, str], file: str) -> dict[str, Any]:
    if url := env.get("GATEWAY_DATABASE_URL"):
        raw.setdefault("database", {})["url"] = url
    if host := env.get("GATEWAY_HOST"):
        raw.setdefault("server", {})["host"] = host
    if port := env.get("GATEWAY_PORT"):
        raw.setdefault("server", {})["port"] = port
    partners = raw.get("partners") or {}
    if not isinstance(partners, dict):
        raise ConfigError("must be a mapping of partner name to settings", file=file, key="partners")
    for name, p in partners.items():
        if not isinstance(p, dict):
            raise ConfigError("must be a mapping", file=file, key=f"partners.{name}")
        env_name = f"GATEWAY_PARTNER_{name.upper().replace('-', '_')}_URL"
        if env_name in env:
            p["url"] = env[env_name]
        creds = p.get("credentials") or {}
        for k, v in list(creds.items()):
            m = _ENV_REF.match(str(v))
            if m:
                if m.group(1) not in env:
                    raise ConfigError(f"environment variable {m.group(1)} is not set",
                                      file=file, key=f"partners.{name}.credentials.{k}")
                creds[k] = env[m.group(1)]
    return raw


def load_settings(path: Path | str | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read and validate the configuration file; raise ``ConfigError`` naming file, key, reason."""
    cfg_path = Path(path) if path else Path(os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG))
    env = dict(os.environ) if env is None else env
    file = str(cfg_path)
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=file) from e
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        line = e.problem_mark.line + 1 if getattr(e, "problem_mark", None) else None
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', e)}", file=file, line=line) from e
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a mapping", file=file)
    raw = _apply_env(raw, env, file)
    raw["source_file"] = str(cfg_path.resolve())
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], file=file, key=key) from e
