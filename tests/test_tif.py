"""The city platform's x-tif signature: fixed vectors, the ±180 s window's edges, replays, and
refusals that name the problem without giving away the token."""

from __future__ import annotations

import hashlib
import re

import pytest
from multidict import CIMultiDict

from gateway.protocols import tif
from gateway.protocols.tif import (MemoryNonceStore, TifError, TifSigner, check_headers,
                                   signature, verify)

NOW = 1_796_000_000.0  # 2026-11-30 (UTC), a fixed clock
TOKEN = "tok-ABC"
TOKENS = {"BJ-GATEWAY": TOKEN}


def test_signature_vector_computed_by_hand() -> None:
    # timestamp + token + nonce + timestamp, SHA-256, uppercase hex (DESIGN.md §3)
    by_hand = hashlib.sha256(b"1796000000" + b"tok-ABC" + b"n0nce-123456" + b"1796000000")
    assert signature("1796000000", "tok-ABC", "n0nce-123456") == by_hand.hexdigest().upper()
    assert signature("1796000000", "tok-ABC", "n0nce-123456") == \
        "BCB03C7A3465814B653D4BEA2D610296BFD9E35D32CD9CAB6E6F61D92B384392"


def test_signature_of_a_non_ascii_token_is_over_its_utf8_bytes() -> None:
    assert signature("1796000000", "令牌", "n0nce-123456") == \
        "94453F82DD8651776BBEB0934DCF0F490976554921BB2E490B01AFE171EE61CD"


def test_order_of_the_parts_matters() -> None:
    # the same three values concatenated in another order must not verify
    assert signature("1796000000", "n0nce-123456", "tok-ABC") != \
        signature("1796000000", "tok-ABC", "n0nce-123456")


def signer(at: float = NOW, nonce: str = "n0nce-123456", token: str = TOKEN) -> TifSigner:
    return TifSigner("BJ-GATEWAY", token, clock=lambda: at, nonce_source=lambda: nonce)


def test_signer_headers_carry_unix_seconds_and_the_signature() -> None:
    h = signer(at=NOW + 0.9).headers()
    assert h == {"x-tif-paasid": "BJ-GATEWAY", "x-tif-timestamp": "1796000000",
                 "x-tif-nonce": "n0nce-123456",
                 "x-tif-signature": "BCB03C7A3465814B653D4BEA2D610296BFD9E35D32CD9CAB6E6F61D92B384392"}


def test_default_signer_draws_a_fresh_nonce_every_request_and_hides_the_token() -> None:
    s = TifSigner("BJ-GATEWAY", "very-secret-token")
    nonces = {s.headers()["x-tif-nonce"] for _ in range(50)}
    assert len(nonces) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", n) for n in nonces)
    assert "very-secret-token" not in repr(s)


def test_round_trip_returns_the_claims() -> None:
    claims = check_headers(signer().headers(), TOKENS, now=NOW)
    assert (claims.paasid, claims.timestamp, claims.nonce) == ("BJ-GATEWAY", 1_796_000_000,
                                                               "n0nce-123456")


@pytest.mark.parametrize("skew", [-180, -179, 0, 179, 180])
def test_window_edges_inclusive(skew: int) -> None:
    check_headers(signer(at=NOW + skew).headers(), TOKENS, now=NOW)


@pytest.mark.parametrize("skew,words", [(-181, "181 s behind"), (181, "181 s ahead of"),
                                        (-3600, "3600 s behind")])
def test_beyond_the_window_is_stale(skew: int, words: str) -> None:
    with pytest.raises(TifError) as e:
        check_headers(signer(at=NOW + skew).headers(), TOKENS, now=NOW)
    assert e.value.code == "stale_timestamp" and e.value.header == "x-tif-timestamp"
    assert words in e.value.message


def test_a_fractional_clock_past_the_edge_is_stale() -> None:
    h = signer(at=NOW).headers()
    check_headers(h, TOKENS, now=NOW + 180.0)
    with pytest.raises(TifError, match="stale_timestamp"):
        check_headers(h, TOKENS, now=NOW + 180.5)


def test_a_wider_window_is_a_parameter() -> None:
    check_headers(signer(at=NOW - 290).headers(), TOKENS, now=NOW, window=300)


@pytest.mark.parametrize("missing", tif.HEADERS)
def test_each_missing_header_is_named(missing: str) -> None:
    h = signer().headers()
    del h[missing]
    with pytest.raises(TifError) as e:
        check_headers(h, TOKENS, now=NOW)
    assert (e.value.code, e.value.header) == ("missing_header", missing)
    assert missing in e.value.message


def test_header_names_are_case_insensitive_and_repeats_refused() -> None:
    h = CIMultiDict({k.upper(): v for k, v in signer().headers().items()})
    assert check_headers(h, TOKENS, now=NOW).paasid == "BJ-GATEWAY"
    h.add("X-TIF-NONCE", "another-nonce-1")
    with pytest.raises(TifError) as e:
        check_headers(h, TOKENS, now=NOW)
    assert (e.value.code, e.value.header) == ("malformed_header", "x-tif-nonce")
    plain = {k.title(): v for k, v in signer().headers().items()}  # a plain dict, other case
    assert check_headers(plain, TOKENS, now=NOW).nonce == "n0nce-123456"


@pytest.mark.parametrize("header,value,words", [
    ("x-tif-timestamp", "1796000000000", "not milliseconds"),
    ("x-tif-timestamp", "2026-11-30T10:00:00+08:00", "Unix seconds"),
    ("x-tif-timestamp", "-5", "Unix seconds"),
    ("x-tif-timestamp", "", "Unix seconds"),
    ("x-tif-nonce", "short", "8 to 128"),
    ("x-tif-nonce", "has space nonce", "8 to 128"),
    ("x-tif-nonce", "x" * 129, "8 to 128"),
    ("x-tif-signature", "ABC", "64 hexadecimal"),
    ("x-tif-signature", "Z" * 64, "64 hexadecimal"),
    ("x-tif-paasid", "two words", "printable ASCII"),
])
def test_malformed_values_are_named(header: str, value: str, words: str) -> None:
    h = signer().headers()
    h[header] = value
    with pytest.raises(TifError) as e:
        check_headers(h, TOKENS, now=NOW)
    assert (e.value.code, e.value.header) == ("malformed_header", header)
    assert words in e.value.message


def test_wrong_token_is_a_bad_signature_and_nothing_secret_is_said() -> None:
    h = signer(token="not-the-token").headers()
    with pytest.raises(TifError) as e:
        check_headers(h, TOKENS, now=NOW)
    assert e.value.code == "bad_signature"
    text = str(e.value)
    assert TOKEN not in text and "not-the-token" not in text
    assert h["x-tif-signature"] not in text
    assert signature(h["x-tif-timestamp"], TOKEN, h["x-tif-nonce"]) not in text


def test_unknown_paasid_is_refused_like_a_wrong_token() -> None:
    h = TifSigner("SOMEONE-ELSE", TOKEN, clock=lambda: NOW,
                  nonce_source=lambda: "n0nce-123456").headers()
    with pytest.raises(TifError) as e:
        check_headers(h, TOKENS, now=NOW)
    assert e.value.code == "bad_signature"


def test_tampered_values_break_the_signature() -> None:
    h = signer().headers()
    h["x-tif-nonce"] = "n0nce-654321"
    with pytest.raises(TifError, match="bad_signature"):
        check_headers(h, TOKENS, now=NOW)
    h = signer().headers()
    h["x-tif-timestamp"] = "1796000001"
    with pytest.raises(TifError, match="bad_signature"):
        check_headers(h, TOKENS, now=NOW)


def test_lower_case_hex_signature_is_accepted() -> None:
    h = signer().headers()
    h["x-tif-signature"] = h["x-tif-signature"].lower()
    check_headers(h, TOKENS, now=NOW)


async def test_replay_is_refused_and_other_nonces_pass() -> None:
    store = MemoryNonceStore(clock=lambda: NOW)
    h = signer().headers()
    await verify(h, TOKENS, store, now=NOW)
    with pytest.raises(TifError) as e:
        await verify(h, TOKENS, store, now=NOW + 10)
    assert (e.value.code, e.value.header) == ("reused_nonce", "x-tif-nonce")
    await verify(signer(nonce="n0nce-other-1").headers(), TOKENS, store, now=NOW)
    # the same nonce from another paasid is another request
    await verify(TifSigner("OTHER", "t2", clock=lambda: NOW,
                           nonce_source=lambda: "n0nce-123456").headers(),
                 {**TOKENS, "OTHER": "t2"}, store, now=NOW)


async def test_replay_at_the_last_second_of_the_window_is_still_refused() -> None:
    t = [NOW]
    store = MemoryNonceStore(clock=lambda: t[0])
    h = signer().headers()
    await verify(h, TOKENS, store, now=NOW)
    t[0] = NOW + 180  # the timestamp check still passes: the nonce store must refuse it
    with pytest.raises(TifError, match="reused_nonce"):
        await verify(h, TOKENS, store, now=t[0])
    t[0] = NOW + 181  # and afterwards the timestamp check does
    with pytest.raises(TifError, match="stale_timestamp"):
        await verify(h, TOKENS, store, now=t[0])


async def test_refused_requests_do_not_burn_their_nonce() -> None:
    store = MemoryNonceStore(clock=lambda: NOW)
    forged = signer(token="guess").headers()
    with pytest.raises(TifError, match="bad_signature"):
        await verify(forged, TOKENS, store, now=NOW)
    stale = signer(at=NOW - 500).headers()
    with pytest.raises(TifError, match="stale_timestamp"):
        await verify(stale, TOKENS, store, now=NOW)
    await verify(signer().headers(), TOKENS, store, now=NOW)  # same nonce, genuine: accepted


async def test_memory_store_prunes_what_has_expired() -> None:
    t = [NOW]
    store = MemoryNonceStore(clock=lambda: t[0], prune_above=10)
    for i in range(10):
        assert await store.remember("p", f"nonce-{i:04d}", expires_at=NOW + 180)
    t[0] = NOW + 200
    assert await store.remember("p", "nonce-late", expires_at=t[0] + 180)
    assert len(store) == 1
    assert await store.remember("p", "nonce-0000", expires_at=t[0] + 180)  # expired: new again
    assert not await store.remember("p", "nonce-late", expires_at=t[0] + 180)
