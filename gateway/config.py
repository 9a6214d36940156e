"""Frozen settings: one YAML file, environment overrides for secrets and URLs, validated at start.

A broken file fails at start-up with the file, the key and the reason (``ConfigError``), never at
the first message. Environment overrides:

* ``GATEWAY_DATABASE_URL`` — ``database.url``
* ``GATEWAY_HOST`` / ``GATEWAY_PORT`` — ``server.host`` / ``server.port``
* ``GATEWAY_ADMIN_TOKEN`` — ``server.admin_token`` (the admin API is off without one)
* ``GATEWAY_PARTNER_<NAME>_URL`` — a partner's ``url`` (``NAME`` upper-cased, ``-`` → ``_``)
* ``GATEWAY_TLS_CERT_FILE``, ``GATEWAY_TLS_KEY_FILE``, ``GATEWAY_TLS_CLIENT_CA_FILE`` —
  ``server.tls`` (paths of mounted files, :func:`gateway.security.tls.server_tls_from_env`)

Secrets come only from the environment or from files (issue 14): every secret-bearing value
(:data:`SECRET_KEYS`: partners' ``credentials``, their ``inbound`` codes, passwords and ids,
callers' ``token``, ``server.admin_token``) may be written ``${ENV_NAME}`` (read from the
environment) or ``${file:PATH}`` (the file's content, surrounding whitespace stripped; a relative
PATH is read from the configuration file's folder). A missing variable or file is a one-line
``ConfigError`` naming the key; a secret file that its group or others may read is used, with a
warning naming the key and the path (Docker and Kubernetes mount secrets 0444/0644; tighten
them where the platform allows). The shipped file holds no secret values.

Relative paths in the file (``mappings_dir``, ``schemas_dir`` and the files a partner's options
name: :data:`FILE_OPTIONS`) are read from the folder the file is in; a path that does not exist
there is taken from the project folder (:data:`PROJECT_ROOT`, which holds ``config/``,
``mappings/`` and ``schemas/``). The shipped file names ``mappings`` and ``schemas/…``: found in
the project folder, from the shipped file and from a copy saved anywhere alike; a copy with its own
``mappings/`` beside it uses that one. The working directory plays no part. ``database.url`` is
a URL, not a path of this file: a relative SQLite path in it is relative to the working
directory, as SQLAlchemy reads it (``sqlite+aiosqlite:////abs/path.db`` pins it).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from gateway.security.console_access import ConsoleSettings
from gateway.errors import ConfigError
from gateway.security.callers import CallerSettings
from gateway.security.tls import TlsClientSettings, TlsServerSettings, server_tls_from_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "gateway.yaml"
# Partner option keys whose value names a file (the SOAP styles' WSDL and schemas): resolved at
# load by the same rule as ``mappings_dir``, so a protocol factory receives an absolute path.
FILE_OPTIONS = frozenset({"wsdl", "inner_schema", "result_schema", "body_schema"})
_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
_FILE_REF = re.compile(r"^\$\{file:([^}]+)\}$")
log = logging.getLogger("gateway.config")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _seconds(v: Any) -> Any:
    """Accept ``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` for a duration; numbers are seconds."""
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"not a duration: {v!r} (use seconds or 500ms / 30s / 15m / 2h / 1d)")
        return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    return v


class ServerSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0)
    admin_token: str | None = None  # bearer token of the admin API; unset = admin API off
    #: ``uvloop`` runs ``gateway serve`` on libuv's event loop instead of asyncio's own
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    #: listen with TLS, optionally requiring client certificates (gateway/security/tls.py)
    tls: TlsServerSettings | None = None
    #: how callers of ``/api/v1/cases*`` and ``/api/v1/admin/*`` authenticate
    #: (gateway/api/auth.py): ``x-tif`` (the city platform's signed headers, checked against
    #: ``callers``) or ``off`` (every request is the local operator; refused unless ``host`` is
    #: a loopback address)
    auth: Literal["x-tif", "off"] = "x-tif"
    #: how far an ``x-tif-timestamp`` may lie from the gateway's clock, either way
    auth_window: float = Field(180.0, gt=0, le=3600)
    #: the garbage collector of a running gateway (gateway/gctuning.py): what is alive at
    #: start-up frozen, the youngest generation collected every ``gc_threshold`` allocations
    #: (0: the interpreter's own settings) and everything every ``gc_collect_every``
    gc_threshold: int = Field(50_000, ge=0)
    gc_collect_every: float = Field(5.0, ge=0)

    _durations = field_validator("auth_window", "gc_collect_every", mode="before")(_seconds)

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> ServerSettings:
        if self.auth == "off" and not is_loopback(self.host):
            raise ValueError(f"auth: off is refused on host {self.host!r}: without "
                             "authentication the gateway may only listen on a loopback address "
                             "(127.0.0.1, ::1, localhost)")
        return self


def is_loopback(host: str) -> bool:
    """``host`` names only this machine (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    #: intake hands a new case's deliveries straight to this instance's worker when it has room
    #: (committed already leased to it: no poll, no claim transaction); off: the worker claims
    #: everything from the database
    handoff: bool = True


class RetrySettings(_Frozen):
    """The long retry schedule of one partner (durable: the worker stores ``next_attempt_at``).

    Waits grow exponentially from ``initial_wait`` by ``multiplier`` and are capped at ``max_wait``;
    ``jitter`` spreads them so many deliveries failing together do not return together.
    A delivery is dead-lettered once ``max_age`` has passed since its first attempt, or after
    ``max_attempts`` attempts if that is set (unset by default: an outage of an hour is ordinary,
    and age is the limit that means something to the applicant); time a partner's breaker holds
    a delivery back costs it no attempt. ``Retry-After`` (and throttling: HTTP 429 or a
    ``throttle_codes`` business code) sets a floor on the next wait, itself capped at
    ``retry_after_cap`` so a partner cannot park a delivery for days. Durations accept seconds
    or ``30s`` / ``15m`` / ``2h`` / ``1d``.
    """

    initial_wait: float = Field(1.0, gt=0)
    multiplier: float = Field(2.0, ge=1.0)
    max_wait: float = Field(600.0, gt=0)
    jitter: Literal["full", "decorrelated", "none"] = "full"
    max_attempts: int | None = Field(None, ge=1)  # None: no count; max_age binds
    max_age: float = Field(86400.0, gt=0)
    retry_after_cap: float = Field(3600.0, gt=0)
    throttle_codes: tuple[str, ...] = ()
    throttle_wait: float = Field(60.0, ge=0)

    _durations = field_validator("initial_wait", "max_wait", "max_age", "retry_after_cap",
                                 "throttle_wait", mode="before")(_seconds)

    @field_validator("throttle_codes", mode="before")
    @classmethod
    def _codes(cls, v: Any) -> Any:
        return tuple(str(c) for c in v) if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _ordered(self) -> RetrySettings:
        if self.max_wait < self.initial_wait:
            raise ValueError("max_wait must not be smaller than initial_wait")
        return self


class BreakerSettings(_Frozen):
    """Circuit breaker of one partner (shared by all gateway instances through the database).

    It opens after ``failure_threshold`` consecutive retryable failures, or when at least
    ``min_calls`` outcomes in the last ``window`` seconds fail at ``failure_ratio`` or more. It stays
    open for ``cool_down`` (multiplied by ``cool_down_multiplier`` after each failed probe, up to
    ``max_cool_down``), then lets exactly one probe through; a probe that has not reported after
    ``probe_timeout`` is presumed lost (its instance died) and another one is allowed.
    """

    enabled: bool = True
    failure_threshold: int = Field(5, ge=1)
    failure_ratio: float = Field(0.5, gt=0, le=1)
    min_calls: int = Field(20, ge=1)
    window: float = Field(60.0, gt=0)
    cool_down: float = Field(30.0, gt=0)
    cool_down_multiplier: float = Field(2.0, ge=1.0)
    max_cool_down: float = Field(600.0, gt=0)
    probe_timeout: float = Field(60.0, gt=0)

    _durations = field_validator("window", "cool_down", "max_cool_down", "probe_timeout",
                                 mode="before")(_seconds)

    @model_validator(mode="after")
    def _ordered(self) -> BreakerSettings:
        if self.max_cool_down < self.cool_down:
            raise ValueError("max_cool_down must not be smaller than cool_down")
        return self


class LimitSettings(_Frozen):
    """Per-partner, per-instance limits: deliveries in flight, and sends per second (token bucket).

    ``rate`` is ``None`` for no rate limit; ``burst`` is the bucket size. With several gateway
    instances the partner sees up to N times these numbers: divide by the instance count.
    """

    max_concurrency: int = Field(4, ge=1)
    rate: float | None = Field(None, gt=0)
    burst: int = Field(1, ge=1)


class SubmitAccess(_Frozen):
    """Which cases a partner may submit to Beijing (inbound cases, issue 15; gateway.inbound.
    access): every item's basic or implementation code listed in ``items`` (exact, or
    ``"PREFIX*"``) and its handling region inside one of ``regions`` (region prefixes). Deny by
    default: a partner without ``inbound.submit`` submits nothing."""

    items: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)


class InboundSettings(_Frozen):
    """How a partner authenticates when it calls the gateway (status callbacks, issue 13), each
    in its own contract: Tianjin's shared ``auth_code`` (notifyStatus ``authCode``), Hebei's
    WS-Security ``username``/``password`` (UsernameToken digest, ``Created`` within
    ``wsse_window`` seconds, nonces single use), the national platform's ``app_id`` (its
    envelope's ``appId``; the SM2 signature is issue 14). A partner without this block cannot
    call the gateway: its callbacks are refused in its protocol."""

    auth_code: str | None = None
    username: str | None = None
    password: str | None = None
    app_id: str | None = None
    wsse_window: float = Field(300.0, gt=0)
    #: the scheme checked, by name (gateway/statuses/inbound_auth.py: wsse-digest, auth-code,
    #: app-id, national-sm2, hmac-sha256); unset: the one of the partner's callback contract
    scheme: str | None = None
    #: a timestamp (WS-Security ``Created``, the HMAC scheme's) at most this old / this far
    #: ahead of the gateway's clock; unset: ``wsse_window``
    max_age: float | None = Field(None, gt=0)
    max_ahead: float | None = Field(None, ge=0)
    #: ``hmac-sha256``: the partner's key id and secret, and the scheme's options (header names,
    #: canonical string: gateway/protocols/hmac_auth.py HmacOptions)
    key_id: str | None = None
    secret: str | None = None
    hmac: dict[str, Any] = Field(default_factory=dict)
    #: the cases this partner may submit to Beijing (issue 15); unset: none
    submit: SubmitAccess | None = None

    _durations = field_validator("wsse_window", "max_age", "max_ahead", mode="before")(_seconds)


_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class PollSettings(_Frozen):
    """How the gateway asks one partner for the status of its delivered cases (issue 13): every
    ``interval`` up to ``batch_size`` delivered, unfinished cases no callback or poll spoke of
    for ``interval`` are queried (the partner's ``status_query``), except during
    ``quiet_hours`` (Beijing time ranges ``"HH:MM-HH:MM"``, the end excluded; ``"22:00-06:00"``
    wraps midnight). The answer is read with the inbound ``mapping`` and applied like a
    callback; a change is pushed to the partner ``push_to`` names when it is configured."""

    enabled: bool = True
    interval: float = Field(300.0, gt=0)
    batch_size: int = Field(50, ge=1, le=1000)
    quiet_hours: tuple[str, ...] = ()
    mapping: str | None = None
    push_to: str | None = "city"

    _durations = field_validator("interval", mode="before")(_seconds)

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _ranges(cls, v: Any) -> Any:
        items = [v] if isinstance(v, str) else v
        for r in items or ():
            if not isinstance(r, str) or not _QUIET.match(r.replace(" ", "")):
                raise ValueError(f"not a Beijing time range HH:MM-HH:MM: {r!r}")
        return tuple(str(r).replace(" ", "") for r in items or ())


class PartnerSettings(_Frozen):
    """One partner: which protocol style, where, which mapping, and its credentials.

    ``options`` belong to the protocol style and are validated by its client factory.
    """

    protocol: str
    url: str
    mapping: str
    mapping_version: str | None = None
    timeout: float = Field(10.0, gt=0)
    # A reply to one case is a receipt of a few hundred bytes; anything past this is refused
    # while it is read (a hostile or broken partner cannot fill the gateway's memory).
    max_reply_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    items_per_message: Literal["one", "many"] = "one"
    credentials: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    limits: LimitSettings = LimitSettings()
    #: the partner's credentials for calling the gateway (status callbacks); None: it cannot
    inbound: InboundSettings | None = None
    #: the partner's status query, options of its protocol style
    #: (gateway/protocols/status_query.py); None: the partner offers none
    status_query: dict[str, Any] | None = None
    poll: PollSettings = PollSettings()
    #: TLS toward this partner: its CA, the gateway's client certificate (gateway/security/tls.py)
    tls: TlsClientSettings | None = None


class ReconcilePartnerSettings(_Frozen):
    """How the reconciler reads one partner's bulk status export (``gateway reconcile``).

    ``export_url`` is absolute, or a path on the partner's host (joined to ``partners.<name>.url``
    so ``GATEWAY_PARTNER_<NAME>_URL`` moves both). Requests go in the partner's envelope with its
    credentials (``options.envelope``); an answer is ``{code, msg, data: {records,
    nextCursor}}`` with a success code of the partner's ``options.success_codes``. Each record is
    read through the inbound status ``mapping`` (the partner's callback mapping: one table of
    codes); ``receipt_field`` is the order of the export and the merge key, ``key_field`` the
    idempotency key the gateway sent, ``status_fields`` the fields the canonical status and
    result follow from (the reconciler maps each distinct combination once)."""

    export_url: str
    mapping: str
    page_size: int = Field(5000, ge=1, le=10000)
    receipt_field: str = "receiptNo"
    key_field: str = "idempotencyKey"
    status_fields: tuple[str, ...] = ("proStatus", "resultCode")
    timeout: float = Field(60.0, gt=0)
    #: a page of 10,000 records is ~2.5 MB; anything past this is refused while it is read
    max_reply_bytes: int = Field(32 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)

    _durations = field_validator("timeout", mode="before")(_seconds)


class BackflowSourceSettings(_Frozen):
    """One source of the national data back-flow (gateway.backflow: the walk, its checkpoint,
    the batches queued for ``push_to``); described in gateway/backflow/settings.py."""

    partner: str = "national"
    export_url: str = "/api/v1/data/backflow/export"
    interval: float = Field(300.0, gt=0)
    page_size: int = Field(5000, ge=1, le=10_000)
    batch_size: int = Field(1000, ge=1, le=5000)
    push_to: str = "city-backflow"
    status_push_to: str | None = None
    timeout: float = Field(60.0, gt=0)
    page_retries: int = Field(5, ge=0)
    retry_wait: float = Field(1.0, gt=0)

    _durations = field_validator("interval", "timeout", "retry_wait", mode="before")(_seconds)


class BackflowSettings(_Frozen):
    """The ``backflow`` block: no source, no scheduled pull."""

    first_delay: float = Field(10.0, ge=0)
    sources: dict[str, BackflowSourceSettings] = Field(default_factory=dict)

    _durations = field_validator("first_delay", mode="before")(_seconds)


class ReconcileSettings(_Frozen):
    """The reconciler (:mod:`gateway.statuses.reconcile`): which partners, how often, how much
    it may repair on its own.

    ``enabled`` starts the scheduled job with the worker (every ``interval``, first run after
    ``first_delay``); the command ``gateway reconcile`` works either way. ``push_to`` names the
    city platform's partner: a missed update applied by the reconciler is pushed there like a
    callback's (None: not pushed). A delivered case the partner does not list is re-delivered
    once, only after a complete walk of the export, only when delivered longer than ``grace``
    ago (a partner's export may lag its intake) and at most ``max_redeliveries`` per run (a
    partner that lost thousands of cases is an incident for an operator, not for an automatic
    resend). A failed export page is retried ``page_retries`` times from its cursor, waits
    growing from ``retry_wait``."""

    enabled: bool = False
    interval: float = Field(3600.0, gt=0)
    first_delay: float = Field(60.0, ge=0)
    push_to: str | None = None
    grace: float = Field(600.0, ge=0)
    max_redeliveries: int = Field(1000, ge=0)
    page_retries: int = Field(5, ge=0)
    retry_wait: float = Field(1.0, gt=0)
    partners: dict[str, ReconcilePartnerSettings] = Field(default_factory=dict)

    _durations = field_validator("interval", "first_delay", "grace", "retry_wait",
                                 mode="before")(_seconds)


class AuditSettings(_Frozen):
    """The audit log (gateway/store/audit.py): ``gateway audit prune`` deletes records older
    than ``retention_days`` (12 months by default, as the EU once-only system keeps its log)."""

    retention_days: int = Field(365, ge=1)


class ObservabilitySettings(_Frozen):
    """OpenTelemetry tracing (gateway/observability/tracing.py): ``off`` (default), ``otlp``
    (OTLP over HTTP to ``otlp_endpoint``; unset: the exporter's default or
    ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``console`` (spans printed to stdout)."""

    tracing: Literal["off", "otlp", "console"] = "off"
    otlp_endpoint: str | None = None


class Settings(_Frozen):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    worker: WorkerSettings = WorkerSettings()
    home_region: str = "110000"
    mappings_dir: str = "mappings"
    schemas_dir: str = "schemas"
    #: the engineer's schema catalog folders (gateway/catalog: a partner's standard or shared
    #: imports vendored once, without editing the partner's files); the tools' --catalog DIR
    schema_catalogs: list[str] = Field(default_factory=list)
    partners: dict[str, PartnerSettings] = Field(default_factory=dict)
    routes: list[dict[str, Any]] = Field(default_factory=list)
    reconcile: ReconcileSettings = ReconcileSettings()
    backflow: BackflowSettings = BackflowSettings()  # national data back-flow (gateway.backflow)
    audit: AuditSettings = AuditSettings()
    #: who may call the API and what each may do (gateway/security/callers.py): deny by default
    callers: dict[str, CallerSettings] = Field(default_factory=dict)
    #: the web console's sign-in (gateway/security/console_access.py); nobody may sign in by default
    console: ConsoleSettings = ConsoleSettings()
    observability: ObservabilitySettings = ObservabilitySettings()  # tracing: off by default
    source_file: str | None = None

    @model_validator(mode="after")
    def _callers_distinct(self) -> Settings:
        seen: dict[str, str] = {}
        for name, c in self.callers.items():
            if not 1 <= len(name) <= 128:
                raise ValueError(f"callers: a caller's name is 1 to 128 characters: {name!r}")
            if c.paasid in seen:
                raise ValueError(f"callers.{name}.paasid {c.paasid!r} is also "
                                 f"callers.{seen[c.paasid]}'s: a paasid names one caller")
            seen[c.paasid] = name
        return self

    @field_validator("home_region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not re.fullmatch(r"\d{6}(\d{6})?", v):
            raise ValueError("must be a 6- or 12-digit region code")
        return v

    @model_validator(mode="after")
    def _lease_outlives_sends(self) -> Settings:
        # A send that outlives its lease is claimed again while still in flight: the partner
        # dedupes, but the work is done twice and the first result is thrown away.
        for name, p in self.partners.items():
            if p.timeout >= self.worker.lease_seconds:
                raise ValueError(
                    f"worker.lease_seconds ({self.worker.lease_seconds:g}) must be longer than "
                    f"partners.{name}.timeout ({p.timeout:g})")
        return self

    def path(self, relative: str) -> Path:
        """A path named in the file, resolved by :func:`resolve_path` (module docstring)."""
        return resolve_path(relative, self.source_file)


def resolve_path(value: str | Path, config_file: str | Path | None) -> Path:
    """Where a path written in the configuration file ``config_file`` points.

    Absolute: itself. Relative: beside the file (its folder) if something exists there, else in
    the project folder if something exists there, else beside the file (so an error names the
    place the file's author meant). With no file, relative to the project folder. Never relative
    to the working directory.
    """
    p = Path(value)
    if p.is_absolute():
        return p
    shipped = PROJECT_ROOT / p
    if config_file is None:
        return shipped
    beside = Path(config_file).resolve().parent / p
    if beside.exists() or not shipped.exists():
        return beside
    return shipped


def _apply_env(raw: dict[str, Any], env: dict[str, str], file: str) -> dict[str, Any]:
    if url := env.get("GATEWAY_DATABASE_URL"):
        raw.setdefault("database", {})["url"] = url
    if host := env.get("GATEWAY_HOST"):
        raw.setdefault("server", {})["host"] = host
    if port := env.get("GATEWAY_PORT"):
        raw.setdefault("server", {})["port"] = port
    if token := env.get("GATEWAY_ADMIN_TOKEN"):
        raw.setdefault("server", {})["admin_token"] = token
    if tls := server_tls_from_env(env):  # GATEWAY_TLS_*: files mounted into a container
        raw.setdefault("server", {})["tls"] = tls
    partners = raw.get("partners") or {}
    if not isinstance(partners, dict):
        raise ConfigError("must be a mapping of partner name to settings", file=file, key="partners")
    for name, p in partners.items():
        if not isinstance(p, dict):
            raise ConfigError("must be a mapping", file=file, key=f"partners.{name}")
        env_name = f"GATEWAY_PARTNER_{name.upper().replace('-', '_')}_URL"
        if env_name in env:
            p["url"] = env[env_name]
    return raw


#: Where secrets live in the file: (path of keys, ``*`` for any key), for :func:`_resolve_secrets`.
SECRET_KEYS: tuple[tuple[str, ...], ...] = (
    ("server", "admin_token"),
    ("partners", "*", "credentials", "*"),
    ("partners", "*", "inbound", "auth_code"),
    ("partners", "*", "inbound", "username"),
    ("partners", "*", "inbound", "password"),
    ("partners", "*", "inbound", "app_id"),
    ("partners", "*", "inbound", "secret"),
    ("callers", "*", "token"),
    ("console", "secret"),
    ("console", "users", "*", "password_hash"),
)


def _secret(value: str, env: dict[str, str], file: str, key: str) -> str:
    """``value`` with a ``${ENV_NAME}`` or ``${file:PATH}`` reference resolved (module docstring)."""
    if m := _ENV_REF.match(value):
        if m.group(1) not in env:
            raise ConfigError(f"environment variable {m.group(1)} is not set", file=file, key=key)
        return env[m.group(1)]
    if m := _FILE_REF.match(value):
        path = Path(m.group(1))
        if not path.is_absolute():
            path = Path(file).resolve().parent / path
        try:
            text = path.read_text(encoding="utf-8").strip()
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as e:
            why = getattr(e, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"cannot read secret file {path}: {why}", file=file,
                              key=key) from e
        if not text:
            raise ConfigError(f"secret file {path} is empty", file=file, key=key)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s: secret file %s may be read by its group or others "
                        "(chmod 600 it)", key, path)
        return text
    return value


def _resolve_secrets(raw: dict[str, Any], env: dict[str, str], file: str) -> None:
    def walk(node: Any, keys: tuple[str, ...], where: tuple[str, ...]) -> None:
        if not keys or not isinstance(node, dict):
            return
        names = list(node) if keys[0] == "*" else [keys[0]] if keys[0] in node else []
        for k in names:
            if len(keys) > 1:
                walk(node[k], keys[1:], (*where, str(k)))
            elif isinstance(node[k], str):
                node[k] = _secret(node[k], env, file, ".".join((*where, str(k))))
    for keys in SECRET_KEYS:
        walk(raw, keys, ())


def _resolve_file_options(raw: dict[str, Any], config_file: str) -> None:
    for p in (raw.get("partners") or {}).values():
        if not isinstance(p, dict):
            continue
        for block in ("options", "status_query"):
            options = p.get(block)
            if not isinstance(options, dict):
                continue  # the model names the key
            for key in FILE_OPTIONS & options.keys():
                if isinstance(options[key], str) and options[key]:
                    options[key] = str(resolve_path(options[key], config_file))
    server = raw.get("server")
    tls_blocks = [p.get("tls") for p in (raw.get("partners") or {}).values() if isinstance(p, dict)]
    for tls in [server.get("tls") if isinstance(server, dict) else None, *tls_blocks]:
        if isinstance(tls, dict):  # TLS certificates and keys
            tls.update({k: str(resolve_path(v, config_file)) for k, v in tls.items()
                        if k.endswith("_file") and isinstance(v, str) and v})


#: libyaml's safe loader when PyYAML was built with it (ten times faster on the shipped file)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        raw = yaml.load(text, Loader=_YAML_LOADER) or {}  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)  # a MarkedYAMLError's: where it went wrong
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', e)}", file=file, line=line) from e
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a mapping", file=file)
    raw = _apply_env(raw, env, file)
    _resolve_secrets(raw, env, file)
    raw["source_file"] = str(cfg_path.resolve())
    _resolve_file_options(raw, raw["source_file"])
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], file=file, key=key) from e
