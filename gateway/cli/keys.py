"""``gateway keys generate``: SM2 key pairs and an SM4 key for the national envelope.

Writes, into ``--out DIR`` (created; files never replaced unless ``--force``):

=====================  =========================================================================
``gateway.key``        the gateway's SM2 private key (hex, mode 0600): ``sm2_private_key``
``gateway.pub``        its public key (``04||x||y`` hex): what the platform is given
``national.key/.pub``  a stand-in for the platform's pair (the simulator signs with it; the
                       gateway's ``peer_public_key`` is ``national.pub``)
``sm4.key``            the SM4 key shared for the appId (hex, 0600): ``sm4_key``
``sm4.key.wrapped``    the same key SM2-encrypted to ``gateway.pub`` in ``--cipher-order``, as a
                       platform issues it: ``sm4_key_wrapped``
=====================  =========================================================================

Only the demo and tests need the platform's pair here; in production the platform keeps its
private key and hands over its public key.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def keys() -> None:
    """Key material for signed and encrypted partner envelopes (SM2/SM4)."""


@keys.command()
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="folder to write the keys into (created)")
@click.option("--cipher-order", type=click.Choice(["C1C3C2", "C1C2C3"]), default="C1C3C2",
              show_default=True, help="layout of sm4.key.wrapped")
@click.option("--force", is_flag=True, help="replace existing key files")
def generate(out: str, cipher_order: str, force: bool) -> None:
    """Write gateway and platform SM2 key pairs and a shared SM4 key to --out."""
    from gateway.security.keys import write_key_pair, write_sm4_key
    from gateway.security.sm import SM2PublicKey

    folder = Path(out)
    try:
        _, gateway_pub = write_key_pair(folder, "gateway", overwrite=force)
        write_key_pair(folder, "national", overwrite=force)
        write_sm4_key(folder / "sm4.key", overwrite=force,
                      wrap_for=SM2PublicKey.from_hex(gateway_pub.read_text().strip()),
                      order="C1C2C3" if cipher_order == "C1C2C3" else "C1C3C2")
    except FileExistsError as e:
        raise click.ClickException(f"{e}; use --force to replace them") from None
    for name in ("gateway.key", "gateway.pub", "national.key", "national.pub", "sm4.key",
                 "sm4.key.wrapped"):
        click.echo(str(folder / name))
