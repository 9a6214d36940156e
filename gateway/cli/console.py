"""``gateway console hash-password``: the Argon2 hash for a console account (config ``console:``).

The password is read from the terminal without echo (twice), or from standard input with
``--stdin`` (one line, for scripts); it is never taken as an argument, which would leave it in
the shell's history and in the process list. Only the hash is printed.
"""

from __future__ import annotations

import sys

import click


@click.group()
def console() -> None:
    """The web console (/console/): accounts."""


@console.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the password from standard input (one line) instead of the terminal.")
def hash_password(from_stdin: bool) -> None:
    """Print the Argon2id hash of a password for console.users.<name>.password_hash."""
    from gateway.console.auth import hash_password as make
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not 8 <= len(password) <= 1024:
        raise click.UsageError("a console password is 8 to 1024 characters")
    click.echo(make(password))


__all__ = ["console"]
