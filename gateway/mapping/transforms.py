"""The whitelist of named transforms a mapping may use in ``pipe:``.

Each entry is a *factory*: it receives the YAML argument once, at load, checks it (``ValueError``
→ the loader turns it into a ``ConfigError`` with file and line) and returns a one-argument
function used at render. Render functions receive non-null values only (null passes through the
pipe untouched) and raise ``ValueError`` for data they cannot handle; the compiled mapping adds
the target path and re-raises it as ``MappingError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

Fn = Callable[[Any], Any]
Factory = Callable[[Any], Fn]

BEIJING = timezone(timedelta(hours=8))
_TOKENS = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]
_TZ_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _tz(spec: Any) -> timezone:
    if spec in (None, "+08:00"):
        return BEIJING
    if spec in ("Z", "UTC", "+00:00"):
        return UTC
    m = _TZ_RE.match(str(spec))
    if not m:
        raise ValueError(f"tz must look like +08:00, got {spec!r}")
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-delta if m.group(1) == "-" else delta)


def _pattern(p: str) -> tuple[str, bool]:
    """Java-style pattern → (strftime format, has milliseconds)."""
    if not isinstance(p, str) or not p:
        raise ValueError(f"date pattern must be a non-empty string, got {p!r}")
    millis = "SSS" in p
    out = p.replace("SSS", "\x00")
    for tok, fmt in _TOKENS:
        out = out.replace(tok, fmt)
    if re.search(r"[A-Za-z]", out.replace("%Y", "").replace("%m", "").replace("%d", "")
                 .replace("%H", "").replace("%M", "").replace("%S", "").replace("T", "")):
        raise ValueError(f"unknown letters in date pattern {p!r} (use yyyy MM dd HH mm ss SSS)")
    return out, millis


def _datetime(arg: Any) -> Fn:
    if isinstance(arg, str):
        arg = {"out": arg}
    if not isinstance(arg, dict):
        raise ValueError("datetime takes a pattern or {in:, out:, tz:}")
    unknown = set(arg) - {"in", "out", "tz"}
    if unknown:
        raise ValueError(f"datetime: unknown option(s) {sorted(unknown)}")
    tz = _tz(arg.get("tz"))
    fin, fout = arg.get("in", "iso"), arg.get("out", "iso")

    if fin == "iso":
        def parse(v: Any) -> datetime:
            d = datetime.fromisoformat(v)
            return d.replace(tzinfo=tz) if d.tzinfo is None else d
    elif fin in ("epoch_s", "epoch_ms"):
        div = 1000 if fin == "epoch_ms" else 1

        def parse(v: Any) -> datetime:
            return datetime.fromtimestamp(float(v) / div, tz)
    else:
        pin, pms = _pattern(fin)
        pin = pin.replace("\x00", "%f")
        if pin == "%Y-%m-%d %H:%M:%S":
            # the national platform's pattern, every back-flow case result: a value written
            # exactly so (two digits each) is what fromisoformat reads, a tenth of strptime's
            # cost (which asks the locale each call); anything else still goes to strptime
            exact = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

            def parse(v: Any) -> datetime:
                s = str(v)
                d = (datetime.fromisoformat(s) if exact.fullmatch(s)
                     else datetime.strptime(s, pin))
                return d.replace(tzinfo=tz)
        else:
            def parse(v: Any) -> datetime:
                return datetime.strptime(str(v), pin).replace(tzinfo=tz)

    if fout == "iso":
        def fmt(d: datetime) -> Any:
            return d.isoformat(timespec="milliseconds" if d.microsecond else "seconds")
    elif fout == "epoch_s":
        def fmt(d: datetime) -> Any:
            return int(d.timestamp())
    elif fout == "epoch_ms":
        def fmt(d: datetime) -> Any:
            return int(d.timestamp() * 1000)
    else:
        pout, oms = _pattern(fout)
        if oms:
            head, _, tail = pout.partition("\x00")

            def fmt(d: datetime) -> Any:
                return f"{d.strftime(head)}{d.microsecond // 1000:03d}{d.strftime(tail)}"
        else:
            def fmt(d: datetime) -> Any:
                return d.strftime(pout)

    def run(v: Any) -> Any:
        return fmt(parse(v).astimezone(tz))
    return run


def _noarg(fn: Fn) -> Factory:
    def factory(arg: Any) -> Fn:
        if arg is not None:
            raise ValueError("takes no argument")
        return fn
    return factory


def _region12(v: Any) -> str:
    s = str(v)
    if len(s) == 12 and s.isdigit():
        return s
    if len(s) == 6 and s.isdigit():
        return s + "000000"
    raise ValueError(f"not a 6- or 12-digit region code: {s!r}")


def _region6(v: Any) -> str:
    s = str(v)
    if len(s) in (6, 12) and s.isdigit():
        return s[:6]
    raise ValueError(f"not a 6- or 12-digit region code: {s!r}")


def _mask(arg: Any) -> Fn:
    arg = arg or {}
    if not isinstance(arg, dict) or set(arg) - {"keep_start", "keep_end", "char"}:
        raise ValueError("mask takes {keep_start:, keep_end:, char:}")
    ks, ke, ch = int(arg.get("keep_start", 6)), int(arg.get("keep_end", 4)), str(arg.get("char", "*"))

    def run(v: Any) -> str:
        s = str(v)
        if len(s) <= ks + ke:
            return ch * len(s)
        return s[:ks] + ch * (len(s) - ks - ke) + (s[-ke:] if ke else "")
    return run


def _int_arg(name: str, arg: Any) -> int:
    if not isinstance(arg, int) or isinstance(arg, bool) or arg < 0:
        raise ValueError(f"{name} takes a non-negative integer, got {arg!r}")
    return arg


def _maxlen(arg: Any) -> Fn:
    n = _int_arg("maxlen", arg)
    return lambda v: str(v)[:n]


def _maxbytes(arg: Any) -> Fn:
    if not isinstance(arg, dict) or "n" not in arg:
        raise ValueError("maxbytes takes {n:, encoding:}")
    n, enc = _int_arg("maxbytes.n", arg["n"]), str(arg.get("encoding", "utf-8"))
    "".encode(enc)  # unknown encoding → LookupError at load

    def run(v: Any) -> str:
        s = str(v)
        b = s.encode(enc, errors="xmlcharrefreplace")
        if len(b) <= n:
            return s
        return b[:n].decode(enc, errors="ignore")
    return run


def _number(arg: Any) -> Fn:
    arg = arg or {}
    if not isinstance(arg, dict) or set(arg) - {"decimals"}:
        raise ValueError("number takes {decimals: N}")
    q = Decimal(1).scaleb(-_int_arg("decimals", arg.get("decimals", 0)))

    def run(v: Any) -> str:
        try:
            return str(Decimal(str(v)).quantize(q, rounding=ROUND_HALF_UP))
        except InvalidOperation as e:
            raise ValueError(f"not a number: {v!r}") from e
    return run


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "y", "yes"):
        return True
    if s in ("0", "false", "n", "no"):
        return False
    raise ValueError(f"not a boolean: {v!r}")


def _str_arg(name: str) -> Factory:
    def factory(arg: Any) -> Fn:
        if not isinstance(arg, str):
            raise ValueError(f"{name} takes a string, got {arg!r}")
        return {"prefix": lambda v: arg + str(v), "suffix": lambda v: str(v) + arg,
                "join": lambda v: arg.join(str(x) for x in v),
                "split": lambda v: [x for x in str(v).split(arg) if x]}[name]
    return factory


def _replace(arg: Any) -> Fn:
    if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
        raise ValueError("replace takes [old, new]")
    old, new = arg
    return lambda v: str(v).replace(old, new)


def _pad(arg: Any) -> Fn:
    if not isinstance(arg, dict) or "len" not in arg:
        raise ValueError("pad takes {len:, char:}")
    n, ch = _int_arg("pad.len", arg["len"]), str(arg.get("char", "0"))
    return lambda v: str(v).rjust(n, ch)


def _float(v: Any) -> float:
    return float(v)


TRANSFORMS: dict[str, Factory] = {
    "datetime": _datetime,
    "region12": _noarg(_region12),
    "region6": _noarg(_region6),
    "mask": _mask,
    "maxlen": _maxlen,
    "maxbytes": _maxbytes,
    "number": _number,
    "str": _noarg(str),
    "int": _noarg(int),
    "float": _noarg(_float),
    "bool": _noarg(_to_bool),
    "upper": _noarg(lambda v: str(v).upper()),
    "lower": _noarg(lambda v: str(v).lower()),
    "trim": _noarg(lambda v: str(v).strip()),
    "prefix": _str_arg("prefix"),
    "suffix": _str_arg("suffix"),
    "join": _str_arg("join"),
    "split": _str_arg("split"),
    "replace": _replace,
    "pad": _pad,
}
"""Transform name → factory. ``code``/``decode`` are handled by the compiler (they need tables)."""


def _xml(arg: Any) -> Fn:
    """Inbound: a string that carries a whole XML document → dict (see ``xmlsource``)."""
    if arg is not None:
        raise ValueError("takes no argument")
    from gateway.mapping.xmlsource import xml_to_dict

    def run(v: Any) -> Any:
        try:
            return xml_to_dict(v)
        except Exception as e:  # lxml.etree.XMLSyntaxError and friends
            raise ValueError(f"not a well-formed XML document: {e}") from e
    return run


TRANSFORMS["xml"] = _xml


def _entry_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    import json
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _entries(arg: Any) -> Fn:
    """A free-form object (``formData``) → ``[{name, value}]`` in key order, each value as text
    (numbers and booleans as JSON writes them, nested lists/objects as compact JSON; null
    values are left out), so a contract with a repeated name/value element can carry it."""
    if arg is not None:
        raise ValueError("takes no argument")

    def run(v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError(f"entries needs an object, got {type(v).__name__}")
        return [{"name": str(k), "value": _entry_text(x)} for k, x in v.items() if x is not None]
    return run


TRANSFORMS["entries"] = _entries
