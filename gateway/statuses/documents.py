"""The callback WSDLs as the gateway serves them: the vendored file (``schemas/<partner>/
StatusNotify.wsdl``) with its service address rewritten to the URL it was asked at, and a schema
it imports served beside it (``?xsd=case.xsd``), so a partner's toolkit pointed at ``?wsdl``
finds everything on the gateway and nothing else."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from lxml import etree

from gateway.protocols import xml as safexml

_ADDRESSES = ("{http://schemas.xmlsoap.org/wsdl/soap/}address",
              "{http://schemas.xmlsoap.org/wsdl/soap12/}address")
_IMPORT = "{http://www.w3.org/2001/XMLSchema}import"


class ServedWsdl:
    """One WSDL and the schemas it imports (by file name), read once at start-up."""

    def __init__(self, wsdl: Path) -> None:
        self.wsdl = wsdl.read_bytes()
        root = safexml.parse(self.wsdl)
        self.xsds: dict[str, bytes] = {}
        for imp in root.iter(_IMPORT):
            loc = imp.get("schemaLocation")
            if loc and "/" not in loc:
                self.xsds[loc] = (wsdl.parent / loc).read_bytes()

    def render(self, address: str) -> bytes:
        root = safexml.parse(self.wsdl)
        for addr in root.iter(*_ADDRESSES):
            addr.set("location", address)
        for imp in root.iter(_IMPORT):
            loc = imp.get("schemaLocation")
            if loc in self.xsds:
                imp.set("schemaLocation", f"{address}?xsd={loc}")
        return etree.tostring(root, encoding="utf-8", xml_declaration=True)

    def answer(self, request: web.Request) -> web.Response:
        """``GET …?wsdl`` or ``GET …?xsd=NAME``; anything else is 404 with a hint."""
        name = request.query.get("xsd")
        if name is not None:
            if name not in self.xsds:
                return web.Response(status=404, text=f"no schema {name!r} here")
            return web.Response(body=self.xsds[name], content_type="text/xml", charset="utf-8")
        if "wsdl" not in {k.lower() for k in request.query}:
            return web.Response(status=404, text="append ?wsdl")
        return web.Response(body=self.render(str(request.url.with_query(None))),
                            content_type="text/xml", charset="utf-8")
