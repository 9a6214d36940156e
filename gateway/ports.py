"""Listening on a port, and saying in one line why it cannot be done.

``gateway serve``, ``gateway simulate`` and the demo all listen; an operator who starts one on a
busy or forbidden port gets one line naming the port, what wanted it and how to choose another,
never a traceback. The demo binds every socket before it starts anything (:func:`listen`), so a
busy port stops it with nothing running and no database touched.

Its own module because both the commands (:mod:`gateway.cli`) and the demo runner
(:mod:`gateway.demo`, which the commands start) need it: kept in either, the other would have to
import back.
"""

from __future__ import annotations

import errno
import socket


class PortUnavailable(Exception):
    """A port cannot be listened on; the message is one line for the operator."""


def port_problem(e: OSError, host: str, port: int, what: str, how: str) -> str | None:
    """One line for a port that cannot be listened on (None: not a listening problem).

    ``what`` names who wanted the port (``"gateway API"``), ``how`` how to choose another.
    """
    if e.errno == errno.EADDRINUSE:
        return f"port {port} ({what}) is already in use on {host}: {how}"
    if e.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
        return f"cannot listen on {host}:{port} ({what}): {e.strerror}; {how}"
    return None


def listen(host: str, port: int, what: str, how: str) -> socket.socket:
    """A listening socket on ``host:port``, bound now; :class:`PortUnavailable` if it cannot be."""
    try:
        return socket.create_server((host, port), backlog=128)
    except OSError as e:
        line = port_problem(e, host, port, what, how)
        if line is None:
            raise
        raise PortUnavailable(line) from None
