"""Shared SOAP 1.1/1.2 machinery: WSDL facts, envelopes, faults, and the HTTP exchange.

The client every SOAP style derives from is :mod:`gateway.protocols.soap_client`; this module is
what it (and the partner simulators) build on.

The two versions differ only in namespaces, content type, where the action travels, and fault
shape (as in zeep's ``Soap11Binding``/``Soap12Binding``); everything else is shared.

Division of labour:

* **zeep** loads each vendored WSDL once, off the event loop, with the tools' hardened settings
  (:func:`gateway.catalog.zeep_settings`: strict, no DTD, no entities) and a transport that
  reads only the WSDL's folder, ``schemas/`` and the offline catalog (standard schemas imported
  by their http(s) URL come from the catalog; any other location is refused); it tells
  us the binding's SOAP version, ``soapAction``, body and header element names, and can render a
  ``dict`` into a typed element (:meth:`SoapOperation.render`). It never does HTTP.
* **lxml** builds and reads envelopes, through the one hardened parser. Measured on the Hebei
  sample case (2.7 KB envelope): zeep's ``create_message`` from a dict takes ~480 µs; our whole
  request path (XSD validation + WS-Security token + envelope) ~110 µs, parsing a reply ~45 µs.
  ``tests/test_soap_base.py`` checks both produce the same body.
* **aiohttp** (the gateway's shared session) carries the bytes, so timeouts, retries and metrics
  are the same for REST and SOAP partners.

Classification (:func:`classify_reply`) is pure: HTTP status, headers and body in, either a parsed
envelope or an :class:`~gateway.outcome.Outcome` out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from gateway.errors import ConfigError
from gateway.outcome import Outcome, OutcomeKind
from gateway.protocols import transport
from gateway.protocols import xml as safexml
from gateway.protocols.classify import classify_http, classify_soap_fault, retry_after
from gateway.security.tls import ClientTls

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
XML_NS = "http://www.w3.org/XML/1998/namespace"


@dataclass(frozen=True)
class SoapVersion:
    """What differs between SOAP 1.1 and 1.2 on the wire."""

    name: str
    ns: str
    media_type: str

    def content_type(self, action: str | None) -> str:
        if self.name == "1.2" and action:
            return f'{self.media_type}; charset=utf-8; action="{action}"'
        return f"{self.media_type}; charset=utf-8"

    def http_headers(self, action: str | None) -> dict[str, str]:
        h = {"Content-Type": self.content_type(action)}
        if self.name == "1.1":
            h["SOAPAction"] = f'"{action or ""}"'
        return h


SOAP11 = SoapVersion("1.1", SOAP11_NS, "text/xml")
SOAP12 = SoapVersion("1.2", SOAP12_NS, "application/soap+xml")
_BY_NS = {SOAP11_NS: SOAP11, SOAP12_NS: SOAP12}


# -- WSDL facts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoapOperation:
    """One operation of one binding, read from a vendored WSDL (loaded once per process)."""

    wsdl_path: str
    name: str
    version: SoapVersion
    action: str
    address: str
    input_qname: etree.QName
    output_qname: etree.QName
    header_qnames: tuple[etree.QName, ...]
    _client: Any = field(repr=False, compare=False)

    @property
    def zeep_client(self) -> Any:
        """The zeep client holding this WSDL (a codec: never used for HTTP)."""
        return self._client

    def element_fields(self, qname: etree.QName) -> dict[str, etree.QName]:
        """Child name → exact QName (qualified or not, as the schema says) of a global element
        of complex type, in declaration order."""
        elem = self._client.get_element(qname.text)
        return {n: etree.QName(e.qname) for n, e in elem.type.elements}

    def render(self, params: Mapping[str, Any]) -> etree._Element:
        """Render a ``dict`` of the input element's fields into a typed element via zeep's
        XSD types (slow path; mappings that produce lxml elements skip it)."""
        elem = self._client.get_element(self.input_qname.text)
        parent = etree.Element("_")
        try:
            elem.render(parent, elem(**params))
        except (TypeError, ValueError) as e:
            raise safexml.XmlError(f"cannot render {self.input_qname.localname}: {e}") from e
        return parent[0]


@functools.lru_cache(maxsize=32)
def _load_client(path: str) -> Any:
    import zeep
    from zeep.exceptions import Error as ZeepError

    from gateway import catalog

    # the transport reads the WSDL's imports from its own folder, schemas/ and the catalog only
    # (standard schemas imported by their http(s) URL included): the settings the tools use,
    # where the transport, not zeep's forbid_external, is the gate to the outside
    transport = catalog.zeep_transport(Path(path).parent, PROJECT_ROOT / "schemas")
    try:
        return zeep.Client(path, transport=transport, settings=catalog.zeep_settings())
    except (OSError, ZeepError, etree.XMLSyntaxError) as e:
        raise ConfigError(f"cannot load WSDL: {e}", file=path) from e


def load_operation(wsdl: Path | str, operation: str, *, service: str | None = None,
                   port: str | None = None, binding: str | None = None) -> SoapOperation:
    """Read an operation's binding facts from a vendored WSDL file (cached per path).

    The binding is the one of the chosen ``service``/``port`` (the first that has the operation
    when not chosen), or, with ``binding`` (its local name or ``{namespace}name``), that binding
    whether or not a ``wsdl:service`` names it; a WSDL without any ``wsdl:service`` is searched
    binding by binding. The endpoint URL always comes from configuration; ``address`` is the
    WSDL's, informational, and empty for a binding no port names.

    Synchronous and slowish (tens of ms): call at start-up, or via ``asyncio.to_thread``.
    Raises :class:`ConfigError` naming the file and what is missing.
    """
    path = str(Path(wsdl).resolve())
    if not Path(path).is_file():
        raise ConfigError("WSDL file not found", file=path, key="options.wsdl")
    if binding and (service or port):
        raise ConfigError("choose the binding, or the service and port, not both", file=path,
                          key="options.binding")
    client = _load_client(path)
    from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding

    candidates: list[tuple[Any, str]] = []  # (binding, the address a port gives it)
    if binding:
        found = [b for name, b in client.wsdl.bindings.items()
                 if isinstance(b, SoapBinding) and binding in (name, etree.QName(name).localname)]
        if not found:
            known = ", ".join(etree.QName(n).localname for n, b in client.wsdl.bindings.items()
                              if isinstance(b, SoapBinding)) or "none"
            raise ConfigError(f"no SOAP binding {binding!r} (bindings: {known})", file=path,
                              key="options.binding")
        if len(found) > 1:
            raise ConfigError(f"binding {binding!r} is ambiguous: name it as {{namespace}}name",
                              file=path, key="options.binding")
        candidates = [(found[0], "")]
    else:
        for svc_name, svc in client.wsdl.services.items():
            if service and svc_name != service:
                continue
            for port_name, p in svc.ports.items():
                if port and port_name != port:
                    continue
                if isinstance(p.binding, SoapBinding):
                    candidates.append((p.binding, p.binding_options.get("address", "")))
        if not client.wsdl.services and not (service or port):
            candidates = [(b, "") for b in client.wsdl.bindings.values()
                          if isinstance(b, SoapBinding)]
    for b, address in candidates:
        ops = b._operations
        if operation not in ops:
            continue
        op = ops[operation]
        if getattr(op, "style", None) == "rpc" and rpc_style(path, b.name, operation) != \
                "rpc/literal":
            raise ConfigError(f"operation {operation!r} is rpc/encoded: the gateway's SOAP styles "
                              "send literal bodies only (document/literal, rpc/literal); SOAP "
                              "encoding is not supported — ask the partner for its literal "
                              "binding", file=path, key="options.operation")
        headers = tuple(etree.QName(e.qname) for e in _header_elements(op))
        return SoapOperation(
            wsdl_path=path, name=operation,
            version=SOAP12 if isinstance(b, Soap12Binding) else SOAP11,
            action=op.soapaction or "", address=address,
            input_qname=etree.QName(op.input.body.qname),
            output_qname=etree.QName(op.output.body.qname),
            header_qnames=headers, _client=client)
    where = f"binding {binding}" if binding else "any matching service/port" \
        if client.wsdl.services else "any binding (the WSDL has no wsdl:service)"
    raise ConfigError(f"operation {operation!r} not found in {where}", file=path,
                      key="options.operation")


def rpc_style(wsdl: str | Path, binding: str, operation: str) -> str:
    """``rpc/literal`` or ``rpc/encoded``: the input ``soap:body use`` of ``operation`` in
    ``binding`` (``{ns}name``), read from the WSDL (zeep keeps the style, not the use)."""
    from gateway import catalog

    try:
        root = safexml.parse(catalog.read_confined(str(wsdl), catalog.roots(Path(wsdl).parent))[1])
    except (OSError, safexml.XmlError):
        return "rpc"
    local = etree.QName(binding).localname
    wsdl_ns = "http://schemas.xmlsoap.org/wsdl/"
    for b in root.iterfind(f"{{{wsdl_ns}}}binding"):
        if b.get("name") != local:
            continue
        for op in b.iterfind(f"{{{wsdl_ns}}}operation"):
            if op.get("name") == operation:
                body = op.find(f"{{{wsdl_ns}}}input/*[@use]")
                if body is not None:
                    return f"rpc/{body.get('use')}"
    return "rpc/literal"


def _header_elements(op: Any) -> list[Any]:
    header = op.input.header
    if header is None or header.type is None:
        return []
    return [e for _, e in header.type.elements]


# -- envelopes -----------------------------------------------------------------------------------

def build_envelope(version: SoapVersion, body: etree._Element,
                   headers: Sequence[etree._Element] = (), *, prefix: str = "soap") -> bytes:
    """Wrap ``body`` (and header blocks) in an envelope, serialised as UTF-8 with a prolog."""
    env, b = _envelope(version, headers, prefix)
    b.append(body)
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def _envelope(version: SoapVersion, headers: Sequence[etree._Element],
              prefix: str) -> tuple[etree._Element, etree._Element]:
    """An envelope (its namespace bound to ``prefix``) and its empty Body."""
    env = etree.Element(etree.QName(version.ns, "Envelope"), nsmap={prefix: version.ns})
    if headers:
        h = etree.SubElement(env, etree.QName(version.ns, "Header"))
        for block in headers:
            h.append(block)
    return env, etree.SubElement(env, etree.QName(version.ns, "Body"))


@dataclass(frozen=True)
class Fault:
    """A SOAP fault in version-neutral terms.

    ``code`` is the local name of the top-level code (1.2 ``Sender``/``Receiver``/…, 1.1
    ``Client``/``Server``/…); ``subcode`` is the ``errorCode`` found in the detail if any, else
    the innermost 1.2 subcode's local name (it is kept on the delivery as the partner's code).
    """

    code: str
    reason: str
    subcode: str | None = None
    detail: etree._Element | None = None

    @property
    def retryable(self) -> bool:
        return classify_soap_fault(self.code) is OutcomeKind.RETRYABLE

    def outcome(self, http_status: int | None, retry_after: float | None = None) -> Outcome:
        msg = f"SOAP fault {self.code}: {self.reason}"
        if self.retryable:
            return Outcome.retryable(msg, partner_code=self.subcode or self.code,
                                     http_status=http_status, retry_after=retry_after)
        return Outcome.permanent(msg, partner_code=self.subcode or self.code,
                                 http_status=http_status)


@dataclass(frozen=True)
class Envelope:
    version: SoapVersion
    headers: tuple[etree._Element, ...]
    body: tuple[etree._Element, ...]
    fault: Fault | None

    def header(self, qname: etree.QName | str) -> etree._Element | None:
        q = qname.text if isinstance(qname, etree.QName) else etree.QName(qname).text
        return next((h for h in self.headers if h.tag == q), None)


class SoapError(safexml.XmlError):
    """Well-formed XML that is not a usable SOAP envelope."""


def parse_envelope(data: bytes, *, max_bytes: int = safexml.MAX_XML_BYTES) -> Envelope:
    """Parse and take apart an envelope of either version (the namespace decides)."""
    root = safexml.parse(data, max_bytes=max_bytes)
    q = etree.QName(root)
    version = _BY_NS.get(q.namespace or "")
    if q.localname != "Envelope" or version is None:
        raise SoapError(f"not a SOAP envelope: root is {q.text}")
    header = root.find(f"{{{version.ns}}}Header")
    body = root.find(f"{{{version.ns}}}Body")
    if body is None:
        raise SoapError("envelope has no Body")
    # an optional Header, then one Body (1.1 also lets foreign elements follow): a second Body
    # or Header is refused, never silently skipped
    parts = [etree.QName(c).localname for c in root if isinstance(c.tag, str)
             and (version is SOAP12 or etree.QName(c).namespace == version.ns)]
    if parts not in (["Body"], ["Header", "Body"]):
        raise SoapError(f"envelope must hold an optional Header and one Body, not {', '.join(parts)}")
    children = tuple(c for c in body if isinstance(c.tag, str))
    fault = None
    if children and children[0].tag == f"{{{version.ns}}}Fault":
        fault = _read_fault(children[0], version)
    hdrs = tuple(c for c in header if isinstance(c.tag, str)) if header is not None else ()
    return Envelope(version, hdrs, children, fault)


def _local(qname_text: str | None) -> str:
    text = (qname_text or "").strip()
    return text.rsplit(":", 1)[-1] if text else ""


def _read_fault(f: etree._Element, v: SoapVersion) -> Fault:
    if v is SOAP12:
        ns = {"e": SOAP12_NS}
        code = _local(f.findtext("e:Code/e:Value", namespaces=ns))
        subs = f.findall(".//e:Subcode/e:Value", namespaces=ns)
        subcode = _local(subs[-1].text) if subs else None
        texts = f.findall("e:Reason/e:Text", namespaces=ns)
        reason = next((t.text or "" for t in texts if t.get(f"{{{XML_NS}}}lang", "").startswith("zh")),
                      texts[0].text or "" if texts else "")
        detail = f.find("e:Detail", namespaces=ns)
    else:
        code = _local(f.findtext("faultcode"))
        subcode = None
        reason = f.findtext("faultstring") or ""
        detail = f.find("detail")
    if detail is not None:  # the partner's own error code beats a generic subcode
        found = next((e.text for e in detail.iter() if isinstance(e.tag, str)
                      and etree.QName(e).localname in {"errorCode", "code", "CODE"}), None)
        subcode = found.strip() if found and found.strip() else subcode
    return Fault(code or "Receiver", reason, subcode, detail)


def build_fault(version: SoapVersion, code: str, reason: str, *, subcode: etree.QName | None = None,
                detail: etree._Element | None = None, lang: str = "zh-CN") -> bytes:
    """A fault envelope (simulators, the gateway's own endpoints; code is ``Sender``/
    ``Receiver``, mapped for 1.1).

    A fault code is a QName held in text, which no serialiser rewrites: the Fault is built in
    place inside the envelope (never built apart and re-parented, where lxml folds its namespace
    declarations into the envelope's and leaves ``env:Sender`` with an undeclared prefix), and
    the code's prefix is the one in scope where it is written: ``env`` for SOAP 1.2 (as the
    specification writes it), ``soap`` for 1.1.
    """
    ns = version.ns
    env, body = _envelope(version, (), "env" if version is SOAP12 else "soap")
    f = etree.SubElement(body, etree.QName(ns, "Fault"))
    if version is SOAP12:
        code_el = etree.SubElement(f, etree.QName(ns, "Code"))
        c = etree.SubElement(code_el, etree.QName(ns, "Value"))
        c.text = f"{c.prefix}:{code}"
        if subcode is not None:
            sc = etree.SubElement(code_el, etree.QName(ns, "Subcode"))
            if subcode.namespace:
                v = etree.SubElement(sc, etree.QName(ns, "Value"),
                                     nsmap=_prefix_for(sc, subcode.namespace))
                v.text = f"{_in_scope_prefix(v, subcode.namespace)}:{subcode.localname}"
            else:  # an unqualified subcode needs no prefix
                etree.SubElement(sc, etree.QName(ns, "Value")).text = subcode.localname
        t = etree.SubElement(etree.SubElement(f, etree.QName(ns, "Reason")), etree.QName(ns, "Text"))
        t.set(f"{{{XML_NS}}}lang", lang)
        t.text = reason
        if detail is not None:
            etree.SubElement(f, etree.QName(ns, "Detail")).append(detail)
    else:
        soap11_code = {"Sender": "Client", "Receiver": "Server"}.get(code, code)
        etree.SubElement(f, "faultcode").text = f"{f.prefix}:{soap11_code}"
        etree.SubElement(f, "faultstring").text = reason
        if detail is not None:
            etree.SubElement(f, "detail").append(detail)
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def _prefix_for(parent: etree._Element, namespace: str) -> dict[str, str] | None:
    """A declaration for ``namespace`` unless one is in scope at ``parent`` already."""
    return None if namespace in parent.nsmap.values() else {"p": namespace}


def _in_scope_prefix(el: etree._Element, namespace: str) -> str:
    return next(p for p, uri in el.nsmap.items() if uri == namespace and p)


# -- HTTP exchange -------------------------------------------------------------------------------

HttpReply = transport.HttpReply


async def exchange(http: aiohttp.ClientSession, url: str, body: bytes, *, version: SoapVersion,
                   action: str | None, timeout: float, max_bytes: int,
                   extra_headers: Mapping[str, str] | None = None,
                   tls: ClientTls | None = None) -> HttpReply | Outcome:
    """POST one envelope with the version's headers (:func:`transport.post`: no redirect
    followed, the whole reply read up to ``max_bytes``)."""
    headers = version.http_headers(action)
    if extra_headers:
        headers.update(extra_headers)
    return await transport.post(http, url, body, headers=headers, timeout=timeout,
                                max_bytes=max_bytes, tls=tls)


async def call(http: aiohttp.ClientSession, url: str, body: bytes, *, operation: SoapOperation,
               timeout: float, max_bytes: int, correlation_id: str,
               tls: ClientTls | None = None,
               auth: Mapping[str, str] | None = None) -> tuple[Envelope, int] | Outcome:
    """One request/reply of ``operation``: the reply envelope and HTTP status, or the outcome of
    a failed exchange, an unreadable reply or a fault, before the style reads the result
    (:meth:`gateway.protocols.soap_client.SoapClient.interpret`); a big reply is parsed off the
    event loop."""
    reply = await exchange(http, url, body, version=operation.version, action=operation.action,
                           timeout=timeout, max_bytes=max_bytes,
                           extra_headers={"X-Correlation-Id": token(correlation_id), **(auth or {})},
                           tls=tls)
    if isinstance(reply, Outcome):
        return reply
    env = await transport.off_loop(len(reply.body),
                                   functools.partial(classify_reply, reply, operation.version))
    if isinstance(env, Outcome):
        return env
    return env, reply.status


def classify_reply(reply: HttpReply, expected: SoapVersion) -> Envelope | Outcome:
    """Decide what an HTTP reply means before the style looks at the body.

    * a SOAP fault decides by its code (1.2 Receiver / 1.1 Server → retryable, else permanent),
      whatever the HTTP status (spyne, for one, sends Sender faults with 500);
    * without a fault, the status decides as for REST partners (``classify_http``: 408/425/429
      and 5xx except 501/505 retryable, keeping ``Retry-After``; other 4xx permanent);
    * a 2xx reply that cannot be read as an envelope → retryable: we cannot tell whether the
      partner took the message, and resending is safe because it dedupes on our idempotency key
      (a partner that keeps answering garbage reaches the attempt limit and is parked);
    * 2xx with a body → the envelope, for the style to interpret.
    """
    ra = retry_after(reply.headers, datetime.now(UTC))
    kind = classify_http(reply.status, reply.headers)
    try:
        env = parse_envelope(reply.body)
    except safexml.XmlError as e:
        if kind is None or kind is OutcomeKind.RETRYABLE:
            return Outcome.retryable(f"malformed reply (HTTP {reply.status}): {e.reason}",
                                     http_status=reply.status, retry_after=ra)
        return Outcome.permanent(f"HTTP {reply.status} without a SOAP envelope",
                                 http_status=reply.status)
    if env.fault is not None:
        if reply.status in {429, 503} and not env.fault.retryable:
            return Outcome.retryable(f"throttled: {env.fault.reason}",
                                     partner_code=env.fault.subcode, http_status=reply.status,
                                     retry_after=ra)
        return env.fault.outcome(reply.status, ra)
    if env.version is not expected:
        return Outcome.permanent(f"partner answered SOAP {env.version.name}, "
                                 f"binding says {expected.name}", http_status=reply.status)
    if kind is OutcomeKind.RETRYABLE:
        return Outcome.retryable(f"HTTP {reply.status}", http_status=reply.status, retry_after=ra)
    if kind is OutcomeKind.PERMANENT:
        return Outcome.permanent(f"HTTP {reply.status}", http_status=reply.status)
    if not env.body:
        return Outcome.retryable("empty SOAP Body in reply", http_status=reply.status)
    return env


# -- shared by the SOAP styles and the simulators ----------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
"""The folder holding ``schemas/`` (vendored WSDLs and XSDs)."""

_NOT_TOKEN = re.compile(r"[^A-Za-z0-9._-]+")


def token(value: str, limit: int = 64) -> str:
    """An informational id (the caller-chosen correlation id) reduced to ``[A-Za-z0-9._-]``
    and ``limit`` characters, so it fits token-typed header fields and HTTP headers and can
    never be the reason a delivery fails."""
    return _NOT_TOKEN.sub("-", value)[:limit].strip("-") or "-"
