"""The walkthrough of mappings/README.md ("Onboarding a SOAP partner from its WSDL"), done as an
engineer does it: a new partner's WSDL (the corpus' PermitService, a province the gateway has no
code for) is put under schemas/, ``gateway mapping scaffold`` writes the skeleton, the README's
filled mapping replaces it, ``gateway mapping check`` passes, the partner, its route and its reply
paths are configuration — and a case submitted to a real gateway is delivered to the partner,
an aiohttp server that reads what arrives with zeep (strict, from its own reading of the WSDL)
and answers with a receipt. No Python of the gateway's is written for the partner."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from gateway import catalog
from gateway.cli.mapping import mapping
from gateway.config import load_settings
from gateway.protocols import xml as safexml
from tests.harness import ROOT, Gateway, write_config

CORPUS_WSDL = Path(__file__).parent / "corpus" / "doclit-wrapped" / "PermitService.wsdl"
NS = "urn:corpus:wrapped"
S11 = "http://schemas.xmlsoap.org/soap/envelope/"


def readme_block(title: str) -> str:
    """The YAML block of the walkthrough in mappings/README.md that holds ``title``, else the
    first one after it (the walkthrough's text is what this test runs)."""
    text = (ROOT / "mappings" / "README.md").read_text(encoding="utf-8")
    text = text[text.index("## Onboarding a SOAP partner from its WSDL"):]
    blocks = [(m.start(), m.group(1)) for m in re.finditer(r"```yaml\n(.*?)```", text, re.S)]
    inside = [b for _, b in blocks if title in b]
    after = [b for at, b in blocks if at > text.index(title)]
    assert inside or after, title
    return (inside or after)[0]


def partner_app(received: list[Any]) -> web.Application:
    import zeep

    client = zeep.Client(str(CORPUS_WSDL), transport=catalog.zeep_transport(CORPUS_WSDL.parent),
                         settings=catalog.zeep_settings())
    element = client.get_element(f"{{{NS}}}SubmitPermit")

    async def submit(request: web.Request) -> web.Response:
        env = safexml.parse(await request.read())
        body = env.find(f"{{{S11}}}Body")
        assert body is not None
        received.append(element.parse(body[0], client.wsdl.types))   # strict: raises if wrong
        reply = (f'<s:Envelope xmlns:s="{S11}"><s:Body><p:SubmitPermitResponse xmlns:p="{NS}">'
                 f'<p:result><p:code>0</p:code><p:message>accepted</p:message></p:result>'
                 f'<p:receipt>PERMIT-{len(received)}</p:receipt></p:SubmitPermitResponse>'
                 f'</s:Body></s:Envelope>')
        return web.Response(text=reply, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/permit", submit)
    return app


async def test_walkthrough_delivers_a_first_message(tmp_path: Path, db_url: str) -> None:
    # 1. the partner's WSDL under schemas/ (a copy of the project's folders: nothing shipped edited)
    schemas, mappings = tmp_path / "schemas", tmp_path / "mappings"
    shutil.copytree(ROOT / "schemas", schemas)
    shutil.copytree(ROOT / "mappings", mappings, ignore=shutil.ignore_patterns("tests"))
    (schemas / "permits").mkdir()
    shutil.copy(CORPUS_WSDL, schemas / "permits" / "PermitService.wsdl")

    # 2. the skeleton
    runner = CliRunner()
    out = mappings / "permits" / "case-submit.yaml"
    r = runner.invoke(mapping, ["scaffold", "--schema", str(schemas / "permits/PermitService.wsdl"),
                                "--schemas", str(schemas), "-o", str(out)])
    assert r.exit_code == 0, r.output
    skeleton = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert skeleton["target"]["schema"] == "permits/PermitService.wsdl"
    assert r.output.strip() == f"wrote {out}"

    # 3. filled as the README shows; 4. check
    filled = readme_block("mappings/permits/case-submit.yaml")
    assert yaml.safe_load(filled)["target"] == skeleton["target"]
    out.write_text(filled, encoding="utf-8")
    r = runner.invoke(mapping, ["check", "--mappings", str(mappings), "--schemas", str(schemas)])
    assert r.exit_code == 0, r.output

    # 5. partner, route, reply paths: configuration
    received: list[Any] = []
    server = TestServer(partner_app(received), host="127.0.0.1")
    await server.start_server()
    try:
        path = write_config(tmp_path, db_url, {})
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["mappings_dir"], raw["schemas_dir"] = str(mappings), str(schemas)
        block = yaml.safe_load(readme_block("partners:  # the new partner"))
        partner = block["partners"]["permits"]
        partner["url"] = str(server.make_url("/permit"))
        partner["timeout"] = 3
        partner["options"]["wsdl"] = str(schemas / "permits/PermitService.wsdl")
        raw["partners"]["permits"] = partner
        raw["routes"] = block["routes"] + raw["routes"]
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

        # 6. a case with an item handled in Shanxi (14…), submitted and delivered
        case = json.loads((ROOT / "samples/cases/01-person-shanghai-social-security.json")
                          .read_text(encoding="utf-8"))
        case["applicationNo"] = "BJ2026120200000401"
        for item in case["items"]:
            item["handlingRegion"] = "140105"
        async with Gateway(load_settings(path)) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"], timeout=30)
        assert [d["state"] for d in final["deliveries"]] == ["delivered"], final
        assert final["deliveries"][0]["partner"] == "permits"
        assert final["deliveries"][0]["receiptNo"] == "PERMIT-1"
    finally:
        await server.close()
    (got,) = received
    assert got.permitNo == case["applicationNo"]
    assert got.applicant.name == case["applicant"]["name"]
    assert [i.code for i in got.item] == [i["itemNo"] for i in case["items"]]
