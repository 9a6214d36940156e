"""The demo: gateway on its embedded defaults + partner simulators + the sample cases.

It posts every sample as the city platform would, follows each case until its deliveries are
delivered or dead-lettered and prints a summary table. Then the statuses come back
(:mod:`gateway.statuses.demo`): every partner simulator walks each case it received through a
realistic path (approved, one denied), calls the gateway back in its own contract, and the
gateway pushes every change to the city-platform simulator; a second table shows per case and
partner the final status, the result and what the city platform received. Then national data
flows back (:mod:`gateway.backflow.demo`): the national simulator's generated export is walked
once and its batches followed to the city platform; then Tianjin submits a case to Beijing
(:mod:`gateway.inbound.demo`) and it is followed to the city platform; last, the audit log's
hash chain is walked. It keeps serving until Ctrl-C (or exits with ``--exit-after``: status 1
if any of these did not arrive or hold).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from gateway.api.keys import CONTRACTS, STORE
from gateway.app import create_app
from gateway.backflow.demo import show_backflow
from gateway.inbound.demo import show_inbound
from gateway.config import Settings
from gateway.protocols.tif import TifSigner
from gateway.ports import PortUnavailable, listen
from gateway.protocols.envelopes import EnvelopeSecurity
from gateway.simulators import SIMULATORS, simulator_factory
from gateway.simulators.national import sign_demo
from gateway.store import Store, audit, sealing
from gateway.statuses.demo import PUSH_RECEIVER, walk_statuses

FINAL = {"delivered", "dead"}

#: The secrets the shipped configuration reads from the environment (config/gateway.yaml): the
#: demo makes each up at its first start, keeps it in ``<data>/demo-secrets.env`` (mode 0600)
#: and gives it to the simulators it starts. A variable already set is left as it is.
DEMO_SECRETS = ("GATEWAY_CITY_CALLER_TOKEN", "GATEWAY_CITY_TIF_TOKEN",
                "GATEWAY_TIANJIN_AUTH_CODE", "GATEWAY_TIANJIN_INBOUND_AUTH_CODE",
                "GATEWAY_HEBEI_PASSWORD", "GATEWAY_HEBEI_INBOUND_PASSWORD",
                "GATEWAY_CONSOLE_SECRET", "GATEWAY_CONSOLE_PASSWORD")
#: the web console's demo account (role engineer), its password GATEWAY_CONSOLE_PASSWORD
DEMO_OPERATOR = "operator"
DEMO_SECRETS_FILE = "demo-secrets.env"


def ensure_demo_secrets(data_dir: Path, env: MutableMapping[str, str] | None = None, *,
                        write: bool = True) -> Path:
    """The demo's secrets (:data:`DEMO_SECRETS`) in ``env`` (default: this process's
    environment): a variable already set is kept, else the value of ``data_dir/demo-secrets.env``,
    else a new random one. ``write``: save them there (0600) when the file lacks any; the demo
    writes only once it holds its ports (a run refused at start leaves no data folder)."""
    env = os.environ if env is None else env
    path = data_dir / DEMO_SECRETS_FILE
    saved: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and name in DEMO_SECRETS:
                saved[name] = value.strip()
    for name in DEMO_SECRETS:
        env.setdefault(name, saved.get(name) or secrets.token_urlsafe(24))
    if write and any(saved.get(n) != env[n] for n in DEMO_SECRETS):
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# made up by the demo (gateway/demo.py); not for any real system\n")
            f.writelines(f"{n}={env[n]}\n" for n in DEMO_SECRETS)
        os.chmod(path, 0o600)
    return path


def demo_console(settings: Settings, env: MutableMapping[str, str] | None = None) -> Settings:
    """The settings with the demo's console account (:data:`DEMO_OPERATOR`, an engineer) whose
    password is the made-up ``GATEWAY_CONSOLE_PASSWORD`` (never a fixed one), and the cookie
    secret ``GATEWAY_CONSOLE_SECRET``; a configuration that names its own accounts (or SSO)
    is left as it is."""
    from gateway.console.auth import hash_password
    from gateway.security.console_access import ConsoleUser
    env = os.environ if env is None else env
    c = settings.console
    if c.users or c.sso is not None or "GATEWAY_CONSOLE_PASSWORD" not in env:
        return settings
    user = ConsoleUser(role="engineer", password_hash=hash_password(
        env["GATEWAY_CONSOLE_PASSWORD"]))
    console = c.model_copy(update={"secret": c.secret or env["GATEWAY_CONSOLE_SECRET"],
                                   "users": {DEMO_OPERATOR: user}})
    return settings.model_copy(update={"console": console})


def demo_signer(settings: Settings) -> TifSigner | None:
    """The demo posts and reads as the first configured caller that may submit and read (the
    city platform in the shipped configuration); None when there is none (auth off)."""
    for c in settings.callers.values():
        if "submit" in c.permissions and {"read", "read_any"} & set(c.permissions):
            return TifSigner(c.paasid, c.token)
    return None


def signing(signer: TifSigner | None) -> tuple[Any, ...]:
    """aiohttp client middlewares that sign every request as ``signer`` (none for None)."""
    if signer is None:
        return ()

    async def sign(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
        request.headers.update(signer.headers())
        response: aiohttp.ClientResponse = await handler(request)
        return response
    return (sign,)


SEAL_KEYS_FILE = "seal.keys"


def ensure_seal_keys(data_dir: Path, env: MutableMapping[str, str] | None = None) -> Path | None:
    """Sealing at rest for the demo: ``GATEWAY_SEAL_KEYS_FILE`` (or ``GATEWAY_SEAL_KEYS``) as
    set, else ``data_dir/seal.keys``, made (0600, one new key) when missing; the file in use, or
    None when the keys come inline. Set in ``env`` before the store opens (it reads them)."""
    env = os.environ if env is None else env
    if sealing.ENV_KEYS in env:
        return None
    path = Path(env.get(sealing.ENV_FILE) or data_dir / SEAL_KEYS_FILE)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("# made up by the demo (gateway/demo.py); not for any real system\n"
                    f"demo-{secrets.token_hex(4)} {sealing.new_key()}\n")
    env[sealing.ENV_FILE] = str(path)
    return path


async def _show_audit(store: Store, console: Console) -> bool:
    """Walk the audit log's hash chain as ``gateway audit verify`` does and say what it found."""
    async with store.db.read("verify the audit log") as conn:
        v = await audit.verify(conn)
    if not v.ok:
        console.print(f"  [red]audit log: {v.problem}")
        return False
    console.print(f"  audit log: {v.count} records, hash chain intact (head {v.head_hash[:16]}…); "
                  f"check it any time with `gateway audit verify`")
    return True


GATEWAY_PORT_HOW = ("stop what holds it, or choose another with --port N "
                    "(./run.sh --port N, or GATEWAY_PORT=N)")
SIM_PORT_HOW = ("stop what holds it, or move the simulators with --sim-base-port N "
                "(./run.sh --sim-base-port N, or GATEWAY_SIM_BASE_PORT=N)")


async def _serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def _local(settings: Settings, name: str) -> bool:
    return name in SIMULATORS and name in settings.partners and \
        urlsplit(settings.partners[name].url).hostname in ("127.0.0.1", "localhost")


def simulated_partners(settings: Settings) -> list[str]:
    """The configured partners cases are sent to that the demo simulates: those with a
    simulator, on this machine (the city platform, which receives status pushes, is
    :func:`simulated_receiver`)."""
    return [name for name in settings.partners
            if name != PUSH_RECEIVER and _local(settings, name)]


def simulated_receiver(settings: Settings) -> str | None:
    """The city platform, when it is configured on this machine (it gets the next port)."""
    return PUSH_RECEIVER if _local(settings, PUSH_RECEIVER) else None


def move_simulators(settings: Settings, base_port: int) -> Settings:
    """Put the simulated partners on ``base_port``, ``base_port + 1``, … in configuration order,
    the city platform after them (the partners' URLs change with them, so the gateway sends
    where they listen)."""
    partners = dict(settings.partners)
    receiver = simulated_receiver(settings)
    moved: dict[str, str] = {}  # a simulator's old netloc → its new one
    for i, name in enumerate(simulated_partners(settings) + ([receiver] if receiver else [])):
        u = urlsplit(partners[name].url)
        moved[u.netloc] = f"{u.hostname}:{base_port + i}"
    for name, p in partners.items():  # also partners served by a simulator (city-backflow)
        u = urlsplit(p.url)
        if u.netloc in moved:
            partners[name] = p.model_copy(update={"url": u._replace(netloc=moved[u.netloc]).geturl()})
    return settings.model_copy(update={"partners": partners})


async def start_simulators(settings: Settings, console: Console,
                           runners: list[web.AppRunner] | None = None,
                           national: EnvelopeSecurity | None = None) -> list[web.AppRunner]:
    """One simulator per configured partner that has one and points at this machine.

    Every port is bound before any simulator starts (``PortUnavailable`` names a busy one and
    leaves nothing open); started runners are appended to ``runners`` for the caller to clean up.
    """
    runners = [] if runners is None else runners
    bound: list[tuple[str, str, socket.socket]] = []
    try:
        receiver = simulated_receiver(settings)
        for name in simulated_partners(settings) + ([receiver] if receiver else []):
            u = urlsplit(settings.partners[name].url)
            host, port = u.hostname or "127.0.0.1", u.port or 80
            bound.append((name, f"{u.scheme}://{host}:{port}",
                          listen(host, port, f"{name} simulator", SIM_PORT_HOW)))
    except PortUnavailable:
        for _, _, sock in bound:
            sock.close()
        raise
    for name, where, sock in bound:
        options: dict[str, Any] = {}
        creds = settings.partners[name].credentials
        if name == PUSH_RECEIVER:  # it accepts the caller the gateway is configured as
            options["callers"] = {creds.get("paasid", ""): creds.get("token", "")}
        elif name == "tianjin" and "auth_code" in creds:  # the credentials the gateway sends
            options["auth_code"] = creds["auth_code"]
        elif name == "hebei" and "username" in creds:
            options["users"] = {creds["username"]: creds.get("password", "")}
        if name == "national" and national is not None:  # the platform's keys (sign_demo)
            options["security"] = national
        runners.append(await _serve(simulator_factory(name)(**options), sock))
        console.print(f"  simulator [bold]{name}[/] on {where}")
    return runners


async def run_demo(settings: Settings, *, data_dir: Path, samples: Path, exit_after: bool,
                   timeout: float, port: int | None = None,
                   sim_base_port: int | None = None) -> int:
    """Run the demo; raises :class:`PortUnavailable` (nothing left running) if a port is taken."""
    console = Console()
    if not console.is_terminal and console.width < 120:
        console = Console(width=120)
    db_url = settings.database.url
    if db_url.startswith("sqlite") and "GATEWAY_DATABASE_URL" not in os.environ:
        db_url = f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}"
    server = settings.server.model_copy(update={"port": port or settings.server.port})
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"url": db_url}), "server": server})
    if sim_base_port is not None:
        settings = move_simulators(settings, sim_base_port)
    settings, national, save_keys = sign_demo(settings, data_dir / "keys")  # SM2/SM4 both ways
    settings = demo_console(settings)  # the console's demo operator (password made up)
    console.rule("[bold]Cross-region gateway demo")
    console.print(f"  database {make_url(db_url)}")  # str() of a URL masks its password
    app = create_app(settings)
    gw_sock = listen(server.host, server.port, "gateway API", GATEWAY_PORT_HOW)
    sims: list[web.AppRunner] = []
    gw: web.AppRunner | None = None
    try:
        await start_simulators(settings, console, sims, national)
        save_keys()  # the ports are held: the demo runs
        ensure_demo_secrets(data_dir)  # what the settings were read with, kept for next time
        if national is not None:
            console.print(f"  national envelope SM4-encrypted, SM2-signed both ways "
                          f"(keys in {data_dir / 'keys'})")
        if (sealed := ensure_seal_keys(data_dir)) is not None:  # before the store opens
            console.print(f"  case bodies and payloads sealed at rest, AES-256-GCM (keys in "
                          f"{sealed})")
        gw = await _serve(app, gw_sock)
        base = f"http://{server.host}:{gw_sock.getsockname()[1]}"
        console.print(f"  gateway API  {base}/api/v1/cases\n  health       {base}/healthz, "
                      f"{base}/readyz\n  metrics      {base}/metrics")
        if DEMO_OPERATOR in settings.console.users:
            console.print(f"  console      {base}/console/  user [bold]{DEMO_OPERATOR}[/], "
                          f"password: GATEWAY_CONSOLE_PASSWORD in "
                          f"{data_dir / DEMO_SECRETS_FILE}")
        signer = demo_signer(settings)
        rows, all_ok, finals = await _push_samples(base, samples, timeout, console, signer)
        _print_table(rows, console)
        statuses_ok = await walk_statuses(settings, base, finals, simulated_partners(settings),
                                          simulated_receiver(settings), timeout, console,
                                          middlewares=signing(signer))
        backflow_ok = await show_backflow(settings, app[STORE], app[CONTRACTS].current.mappings,
                                          simulated_partners(settings), timeout, console)
        inbound_ok = await show_inbound(settings, base, timeout, console)  # gateway/inbound
        audit_ok = await _show_audit(app[STORE], console)
        if exit_after:
            return 0 if all_ok and statuses_ok and backflow_ok and inbound_ok and audit_ok else 1
        console.print(f"\nServing on {base} — post more cases with curl "
                      f"(see README), Ctrl-C to stop.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        if gw is not None:
            await gw.cleanup()
        else:
            gw_sock.close()
        for r in sims:
            await r.cleanup()


async def _push_samples(base: str, samples: Path, timeout: float, console: Console,
                        signer: TifSigner | None = None
                        ) -> tuple[list[dict[str, Any]], bool, dict[str, dict[str, Any]]]:
    """Post every sample and follow it: the table rows, whether everything was delivered, and
    each accepted case's final view by sample name."""
    files = sorted(samples.glob("*.json"))
    started: dict[str, float] = {}
    accepted: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    all_ok = True
    async with aiohttp.ClientSession(middlewares=signing(signer)) as http:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            submit = progress.add_task("submitting cases", total=len(files))
            for f in files:
                started[f.name] = time.monotonic()
                async with http.post(f"{base}/api/v1/cases", data=f.read_bytes(),
                                     headers={"Content-Type": "application/json"}) as r:
                    doc = await r.json(content_type=None)
                if r.status in (200, 202):
                    accepted[f.name] = doc
                else:
                    all_ok = False
                    rows.append({"case": f.stem, "target": "-", "outcome": f"rejected {r.status}",
                                 "receipt": doc.get("detail", ""), "ms": None})
                progress.advance(submit)
            total = sum(len(d["deliveries"]) for d in accepted.values())
            deliver = progress.add_task("delivering to partners", total=total)
            deadline = time.monotonic() + timeout
            final: dict[str, dict[str, Any]] = {}
            while len(final) < len(accepted) and time.monotonic() < deadline:
                for name, doc in accepted.items():
                    if name in final:
                        continue
                    async with http.get(f"{base}/api/v1/cases/{doc['id']}") as r:
                        case = await r.json()
                    if all(d["state"] in FINAL for d in case["deliveries"]):
                        final[name] = case
                        case["_ms"] = (time.monotonic() - started[name]) * 1000
                done = sum(len(c["deliveries"]) for c in final.values())
                progress.update(deliver, completed=done)
                if len(final) < len(accepted):
                    await asyncio.sleep(0.2)
    for name, doc in accepted.items():
        case = final.get(name)
        app_no = doc["applicationNo"]
        if case is None:
            all_ok = False
            rows.append({"case": app_no, "target": "?", "outcome": "still pending at timeout",
                         "receipt": "", "ms": None})
            continue
        for item in case["homeItems"]:
            rows.append({"case": app_no, "target": f"home (item {item})",
                         "outcome": "stays in Beijing", "receipt": "", "ms": None})
        for d in case["deliveries"]:
            ok = d["state"] == "delivered"
            all_ok &= ok
            rows.append({"case": app_no, "target": f"{d['partner']} (item {','.join(d['items'])})",
                         "outcome": d["state"] if ok else f"{d['state']}: {d['lastMessage']}",
                         "receipt": d["receiptNo"] or "", "ms": case["_ms"]})
    return rows, all_ok, {Path(name).stem: case for name, case in final.items()}


def _print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Sample cases")
    table.add_column("case", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("partner receipt", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for r in rows:
        style = "green" if r["outcome"] == "delivered" else (
            "cyan" if r["outcome"].startswith("stays") else "red")
        table.add_row(r["case"], r["target"], f"[{style}]{r['outcome']}[/]", r["receipt"],
                      "" if r["ms"] is None else f"{r['ms']:.0f} ms")
    console.print(table)


__all__ = ["move_simulators", "run_demo", "simulated_partners", "simulated_receiver",
           "start_simulators"]
