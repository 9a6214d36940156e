"""A broken configuration fails at start-up with the file, the key and the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import FILE_OPTIONS, load_settings
from gateway.contracts import load_contracts
from gateway.errors import ConfigError
from gateway.protocols import soap_typed, soap_xml_string
from tests.harness import TEST_SECRETS

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_loads() -> None:
    s = load_settings(ROOT / "config" / "gateway.yaml", env=TEST_SECRETS)
    assert s.database.url.startswith("sqlite+aiosqlite:///")
    assert "national" in s.partners
    assert s.path(s.mappings_dir) == ROOT / "mappings"


def test_environment_overrides_urls_and_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("partners:\n  national:\n    protocol: rest-json\n    url: http://a\n"
                   "    mapping: m\n    credentials: {app_secret: '${NATIONAL_SECRET}'}\n")
    s = load_settings(cfg, env={"GATEWAY_DATABASE_URL": "postgresql+asyncpg://h/db",
                                "GATEWAY_PARTNER_NATIONAL_URL": "http://b",
                                "NATIONAL_SECRET": "s3"})
    assert s.database.url == "postgresql+asyncpg://h/db"
    assert s.partners["national"].url == "http://b"
    assert s.partners["national"].credentials == {"app_secret": "s3"}


@pytest.mark.parametrize(("text", "expected"), [
    ("server: {port: 99999}\n", "c.yaml: server.port: Input should be less than or equal to 65535"),
    ("server:\n  port: [1\n", "c.yaml:3: not valid YAML"),
    ("home_region: '11'\n", "c.yaml: home_region: Value error, must be a 6- or 12-digit region code"),
    ("partners:\n  national: {url: http://a, mapping: m}\n",
     "c.yaml: partners.national.protocol: Field required"),
    ("partners:\n  national: {protocol: rest-json, url: http://a, mapping: m,"
     " credentials: {k: '${MISSING_SECRET}'}}\n",
     "c.yaml: partners.national.credentials.k: environment variable MISSING_SECRET is not set"),
    ("wroker: {}\n", "c.yaml: wroker: Extra inputs are not permitted"),
    ("worker: {lease_seconds: 5}\npartners:\n  national: {protocol: rest-json, url: http://a,"
     " mapping: m, timeout: 10}\n",
     "c.yaml: Value error, worker.lease_seconds (5) must be longer than partners.national.timeout (10)"),
])
def test_broken_config_names_file_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, env={})
    assert str(e.value).replace(str(tmp_path) + "/", "").startswith(expected)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml: cannot read"):
        load_settings(tmp_path / "nope.yaml", env={})


# -- relative paths: beside the file, else the project folder; never the working directory --------

def _copy_shipped(to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "config" / "gateway.yaml", to)
    return to


def test_copy_of_the_shipped_file_elsewhere_finds_the_shipped_contracts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy outside config/ (and a working directory with no mappings/) loads the shipped
    mappings, schemas and partner WSDLs: before, it looked for /tmp/…/../mappings."""
    copy = _copy_shipped(tmp_path / "elsewhere" / "copy.yaml")
    monkeypatch.chdir(tmp_path)
    s = load_settings(copy, env=TEST_SECRETS)
    assert s.path(s.mappings_dir) == ROOT / "mappings"
    assert s.path(s.schemas_dir) == ROOT / "schemas"
    contracts = load_contracts(s)
    assert contracts.mappings.mappings_dir == ROOT / "mappings"
    for p in s.partners.values():
        assert contracts.mappings.get(p.mapping, p.mapping_version) is not None
        for key in FILE_OPTIONS & p.options.keys():  # absolute, and there: no cwd involved
            assert Path(p.options[key]).is_absolute() and Path(p.options[key]).is_file(), key
    tj = s.partners["tianjin"].options
    assert tj["wsdl"] == str(ROOT / "schemas" / "tianjin" / "ExchangeService.wsdl")
    # the clients build from the resolved files (zeep reads the WSDL, lxml the schemas)
    for name in ("tianjin", "hebei"):
        p = s.partners[name]
        module = {"soap-xml-string": soap_xml_string, "soap-typed": soap_typed}[p.protocol]
        assert module.create_client(name, p, None).url == p.url  # type: ignore[arg-type]


def test_a_folder_beside_the_file_wins_over_the_project_folder(tmp_path: Path) -> None:
    copy = _copy_shipped(tmp_path / "copy.yaml")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    s = load_settings(copy, env=TEST_SECRETS)
    assert s.path(s.mappings_dir) == tmp_path / "mappings"
    assert s.path(s.schemas_dir) == ROOT / "schemas"  # none beside it: the shipped ones
    assert load_contracts(s).mappings.mappings_dir == tmp_path / "mappings"


def test_a_path_found_nowhere_is_named_as_seen_from_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cwd" / "nowhere").mkdir(parents=True)  # in the working directory: not used
    monkeypatch.chdir(tmp_path / "cwd")
    cfg = tmp_path / "conf" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text("mappings_dir: nowhere\n")
    s = load_settings(cfg, env={})
    assert s.path(s.mappings_dir) == tmp_path / "conf" / "nowhere"
    with pytest.raises(ConfigError) as e:
        load_contracts(s)
    assert str(tmp_path / "conf" / "nowhere") in str(e.value)


def test_shipped_file_works_from_any_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    s = load_settings(env=TEST_SECRETS)
    assert s.source_file == str(ROOT / "config" / "gateway.yaml")
    assert load_contracts(s).mappings.mappings_dir == ROOT / "mappings"
    assert s.partners["hebei"].options["body_schema"] == str(ROOT / "schemas/hebei/case.xsd")


def test_route_check_accepts_a_copy_saved_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _copy_shipped(tmp_path / "copy.yaml")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["route", "check", "--config", str(copy)])
    assert res.exit_code == 0, res.output
    assert "cannot be loaded" not in res.output and "no ties" in res.output
