"""Request envelopes of REST partners.

The national platform wraps every request as ``{appId, version, timestamp, nonce, encType,
signType, data | encData, signData}``. ``encType``/``signType`` ``NONE`` carries ``data`` in the
clear; SM4 encryption and SM2 signatures plug in here as another envelope kind (roadmap).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

Envelope = Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]


def national_plain(data: dict[str, Any], credentials: dict[str, str]) -> dict[str, Any]:
    return {
        "appId": credentials.get("app_id", ""),
        "version": "1.0",
        "timestamp": int(time.time() * 1000),
        "nonce": secrets.token_hex(16),
        "encType": "NONE",
        "signType": "NONE",
        "data": data,
    }


def bare(data: dict[str, Any], credentials: dict[str, str]) -> dict[str, Any]:
    return data


ENVELOPES: dict[str, Envelope] = {"national": national_plain, "none": bare}
