"""A callback's body, read whole up to the gateway's cap (``server.max_body_bytes``): a caller
sending more is told so in its own protocol, never with a stack trace or a generic page."""

from __future__ import annotations

from aiohttp import web


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body exceeds the gateway's limit of {limit} bytes")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or :class:`TooLarge` (the app stops reading at its ``client_max_size``,
    which is ``limit``; a declared length past it is refused before anything is read)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit)
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(limit) from None
    if len(data) > limit:
        raise TooLarge(limit)
    return data
