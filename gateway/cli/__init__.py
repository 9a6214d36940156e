"""The ``gateway`` command (console entry point ``gateway.cli:main``).

One module per command group; the options and the database handling they share live beside
them, so no command borrows from another::

    serve.py     serve, demo, simulate      the commands that listen
    db.py        db upgrade                 create or migrate the schema
    case.py      case show                  a case as the API shows it (gateway.views)
    dlq.py       dlq list|show|replay|discard
    route.py     route explain|check
    mapping.py   mapping check|test|render|coverage|scaffold
    overdue.py   overdue                    items past their deadline (办理时限)
    reconcile.py reconcile                  our view against a partner's status export
    backflow.py  backflow status|run|replay national data back-flow (数据回流)
    keys.py      keys generate              SM2 key pairs and an SM4 key (national envelope)
    audit.py     audit verify|prune         the hash-chained audit log
    seal.py      seal keygen|reseal         keys of encryption at rest, rotation
    options.py   --config, --database-url, reading the settings
    database.py  opening the store; a database that cannot be used, in one line

Heavy imports (aiohttp, SQLAlchemy, the application) happen inside the commands that need them,
so ``gateway --help`` and the tools start quickly.
"""

from __future__ import annotations

import click

from gateway.cli.audit import audit
from gateway.cli.backflow import backflow
from gateway.cli.case import case
from gateway.cli.console import console
from gateway.cli.db import db
from gateway.cli.dlq import dlq
from gateway.cli.keys import keys
from gateway.cli.mapping import mapping
from gateway.cli.overdue import overdue
from gateway.cli.reconcile import reconcile
from gateway.cli.route import route
from gateway.cli.seal import seal
from gateway.cli.serve import demo, serve, simulate


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--log-json", is_flag=True, help="Write logs as JSON lines.")
def main(log_level: str, log_json: bool) -> None:
    """Cross-region interoperability gateway for government services."""
    from gateway.observability.logs import configure
    configure(log_level.upper(), json=log_json)


for _command in (serve, demo, simulate, db, case, dlq, route, mapping, overdue, reconcile, backflow,
                 audit, keys, seal, console):
    main.add_command(_command)

__all__ = ["main"]
