"""Deny by default (issue 14): each caller may submit only the items and regions it lists, reads
only the cases it submitted (another's answers 404 like a missing id), uses only the admin
operations it is given, and sees natural persons' ID and phone numbers masked unless its
identity is ``full``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from gateway.config import load_settings
from gateway.protocols.tif import TifSigner
from gateway.security.masking import mask_id, mask_phone
from tests.harness import Gateway, Simulator, caller_entry, db_rows, edit_config, write_config

SAMPLE = "01-person-shanghai-social-security"  # item 000134023000, handled in 310115
TOKENS = {name: f"{name}-token-synthetic-0001" for name in ("city", "other", "ops", "viewer")}
SIGNERS = {name: TifSigner(name.upper(), token) for name, token in TOKENS.items()}
CALLERS = {
    "city": caller_entry(paasid="CITY", token=TOKENS["city"], permissions=["submit", "read"],
                         items=["000134*"], regions=["31", "12"], identity="masked"),
    "other": caller_entry(paasid="OTHER", token=TOKENS["other"], permissions=["submit", "read"],
                          identity="masked"),
    "ops": caller_entry(paasid="OPS", token=TOKENS["ops"],
                        permissions=["read_any", "dead_letters.list"], identity="full"),
    # no identity key: masked is the default
    "viewer": {k: v for k, v in caller_entry(paasid="VIEWER", token=TOKENS["viewer"],
                                             permissions=["read_any"]).items()
               if k != "identity"},
}


async def _call(gw: Gateway, who: str, method: str, path: str,
                body: Any = None) -> tuple[int, Any]:
    assert gw.http is not None
    async with gw.http.request(method, path, json=body, headers=SIGNERS[who].headers()) as r:
        return r.status, await r.json(content_type=None)


def _forbidden(answer: tuple[int, Any], caller: str, pointer: str | None = None) -> None:
    status, doc = answer
    assert status == 403, doc
    assert doc["type"] == "urn:gateway:problem:forbidden" and doc["caller"] == caller
    assert repr(caller) in doc["detail"]
    if pointer is not None:
        assert pointer in [e["path"] for e in doc["errors"]] and pointer in doc["detail"]


async def test_acl_denials_ownership_and_masking(tmp_path: Path, db_url: str,
                                                 samples: dict[str, Any]) -> None:
    async with Simulator("national") as sim:
        cfg = edit_config(write_config(tmp_path, db_url, {"national": sim.url()}),
                          lambda raw: raw["callers"].update(copy.deepcopy(CALLERS)))
        async with Gateway(load_settings(cfg), signer=None) as gw:
            case = samples[SAMPLE]
            item = copy.deepcopy(case)
            item["items"][0]["basicCode"] = "000999000000"
            item["items"][0]["implementationCode"] = "11310115MB2C12345X000999000000001"
            _forbidden(await _call(gw, "city", "POST", "/api/v1/cases", item), "city",
                       "/items/0/basicCode")
            region = copy.deepcopy(case)
            region["items"][0]["handlingRegion"] = "440305"  # Shenzhen: not city's
            _forbidden(await _call(gw, "city", "POST", "/api/v1/cases", region), "city",
                       "/items/0/handlingRegion")
            _forbidden(await _call(gw, "ops", "POST", "/api/v1/cases", case), "ops")  # no submit
            assert (await db_rows(db_url, "SELECT count(*) FROM cases"))[0][0] == 0

            status, accepted = await _call(gw, "city", "POST", "/api/v1/cases", case)
            assert status == 202, accepted
            case_id = accepted["id"]
            # the answer to a submission: the case's view without its body, masked all the same
            answer = json.dumps(accepted, ensure_ascii=False)
            assert "case" not in accepted and accepted["applicationNo"] == case["applicationNo"]
            assert case["applicant"]["certNo"] not in answer
            assert case["applicant"]["phone"] not in answer
            # another caller: the same answer as an id that does not exist
            missing = await _call(gw, "other", "GET",
                                  "/api/v1/cases/00000000-0000-4000-8000-000000000000")
            theirs = await _call(gw, "other", "GET", f"/api/v1/cases/{case_id}")
            assert theirs[0] == missing[0] == 404
            assert theirs[1]["title"] == missing[1]["title"]
            # nor may it learn the case by resubmitting its application number
            status, doc = await _call(gw, "other", "POST", "/api/v1/cases", case)
            assert status == 409 and case_id not in json.dumps(doc)

            cert, phone = case["applicant"]["certNo"], case["applicant"]["phone"]
            status, mine = await _call(gw, "city", "GET", f"/api/v1/cases/{case_id}")
            assert status == 200
            text = json.dumps(mine, ensure_ascii=False)
            assert cert not in text and phone not in text  # nowhere: not in the licence id either
            assert mine["case"]["applicant"]["certNo"] == "110105********1239" == mask_id(cert)
            assert mine["case"]["applicant"]["phone"] == "138****0001" == mask_phone(phone)
            assert mine["case"]["elicences"][0]["holderCertNo"] == "110105********1239"
            assert "110105********1239" in mine["case"]["elicences"][0]["licenceId"]
            status, full = await _call(gw, "ops", "GET", f"/api/v1/cases/{case_id}")
            assert status == 200 and full["case"]["applicant"]["certNo"] == cert
            status, masked = await _call(gw, "viewer", "GET", f"/api/v1/cases/{case_id}")
            assert status == 200 and cert not in json.dumps(masked)  # masked is the default

            # admin operations: each one named, nothing by default
            status, _ = await _call(gw, "ops", "GET", "/api/v1/admin/dead-letters")
            assert status == 200
            for who, method, path in [("ops", "GET", "/api/v1/admin/breakers"),
                                      ("ops", "POST", "/api/v1/admin/reload"),
                                      ("city", "GET", "/api/v1/admin/dead-letters"),
                                      ("city", "POST", "/api/v1/admin/dead-letters/replay")]:
                answer = await _call(gw, who, method, path, {"all": True, "reason": "x"})
                _forbidden(answer, who)
            assert (await db_rows(db_url, "SELECT count(*) FROM operator_actions"))[0][0] == 0


async def test_a_company_applicant_keeps_its_uscc(tmp_path: Path, samples: dict[str, Any]) -> None:
    """A unified social credit code names an organisation (public); its legal
    representative's ID number is a person's and is masked."""
    from gateway.security.masking import mask_case
    company = next(c for c in samples.values() if c["applicant"].get("certType") == "001")
    doc = mask_case({"case": company}, company)
    assert doc["case"]["applicant"]["certNo"] == company["applicant"]["certNo"]
    rep = company["applicant"].get("legalRepresentative")
    if rep is not None:
        assert doc["case"]["applicant"]["legalRepresentative"]["certNo"] == mask_id(rep["certNo"])
