"""Requests written byte for byte, and the check that an answer is an RFC 9457 problem document.

HTTP clients refuse to send what a hostile caller sends (undecodable header bytes, a NUL in a
path), so these tests write the request themselves.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.harness import Gateway, signed_headers


async def raw_request(g: Gateway, head: bytes, payload: bytes = b"", *,
                      sign: bool = True) -> tuple[int, str, Any]:
    """One request written byte for byte (clients refuse to send the hostile headers), signed
    as the test caller unless ``sign`` is false."""
    port = g.server.port
    assert port is not None
    signed = b"".join(f"{k}: {v}\r\n".encode() for k, v in signed_headers().items()) if sign \
        else b""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + signed + b"Host: test\r\nConnection: close\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    header_block, _, content = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    ctype = next((line.split(":", 1)[1].split(";")[0].strip() for line in lines[1:]
                  if line.lower().startswith("content-type:")), "")
    return status, ctype, json.loads(content) if content else None


async def post_case(g: Gateway, payload: bytes, **headers: str) -> tuple[int, str, Any]:
    assert g.http is not None
    async with g.http.post("/api/v1/cases", data=payload,
                           headers={"Content-Type": "application/json", **headers}) as r:
        return r.status, r.content_type, await r.json(content_type=None)


async def call(g: Gateway, method: str, path: str, headers: dict[str, str] | None = None,
               json_body: Any = None) -> tuple[int, str, Any]:
    assert g.http is not None
    async with g.http.request(method, path, json=json_body, headers=headers or {}) as r:
        return r.status, r.content_type, await r.json(content_type=None)


def assert_problem(answer: tuple[int, str, Any], status: int, *, pointer: str | None = None,
                   header: str | None = None, query: str | None = None,
                   words: str = "") -> dict[str, Any]:
    """A problem document with this status whose detail (and ``errors``) names the pointer,
    header or query parameter given."""
    code, ctype, doc = answer
    assert code == status, doc
    assert ctype == "application/problem+json"
    assert doc["status"] == status and doc["title"] and isinstance(doc["detail"], str)
    if pointer is not None:
        assert pointer in [e["path"] for e in doc["errors"]], doc
        assert pointer in doc["detail"], doc["detail"]
    if header is not None:
        assert [e["name"] for e in doc["errors"]] == [header] and doc["errors"][0]["in"] == "header"
        assert header in doc["detail"]
    if query is not None:
        assert {"in": "query", "name": query} in [
            {"in": e["in"], "name": e["name"]} for e in doc["errors"]], doc
        assert f"query parameter {query}" in doc["detail"], doc["detail"]
    assert words in doc["detail"], doc["detail"]
    return doc
