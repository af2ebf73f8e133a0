"""Configuration as typed sections: each section's defaults live in its dataclass only."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from bosco.cli import cli
from bosco.config import SECTIONS, AwsSection, BuildSection, CdnSection, load_config
from bosco.errors import ConfigError

pytestmark = pytest.mark.usefixtures("isolated_env")  # conftest.py: no user config, no BOSCO_* variables


def section_defaults() -> dict[str, dict[str, object]]:
    """What `bosco config --json` must print for an empty workspace, built from the dataclasses
    alone (keys accepted only for compatibility, aws.key/aws.secret, are listed only when set)."""
    return {name: {f.name: f.default for f in fields(cls) if f.name not in ("key", "secret")}
            for name, cls in SECTIONS.items()}


def test_config_json_defaults_are_the_section_defaults(tmp_path: Path) -> None:
    (tmp_path / ".bosco").mkdir()
    result = CliRunner().invoke(cli, ["-W", str(tmp_path), "config", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == {**section_defaults(), "types": {}}
    assert printed["cdn"] == {"host": "127.0.0.1", "port": 7334, "url": None}
    assert printed["build"] == {"timeout": 600000}
    lines = CliRunner().invoke(cli, ["-W", str(tmp_path), "config"]).stdout.splitlines()
    assert 'aws.shortcache = "public, max-age=60, must-revalidate"  # default' in lines
    assert all(line.endswith("  # default") for line in lines)


def test_typed_sections_hold_the_layered_values_and_their_defaults(tmp_path: Path) -> None:
    settings = tmp_path / ".bosco" / "bosco.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"cdn": {"port": 8000}, "aws": {"maxage": 60, "key": "AKIA1"}}))
    config = load_config(tmp_path, "local", env={"HOME": str(tmp_path), "BOSCO_AWS_BUCKET": "assets"})
    assert config.cdn == CdnSection(port=8000)
    assert (config.cdn.host, config.cdn.url) == ("127.0.0.1", None)
    assert config.aws == AwsSection(bucket="assets", maxage=60, key="AKIA1")
    assert config.build == BuildSection(timeout=600000)
    assert config.origin("cdn.port") == str(settings)
    assert config.origin("aws.bucket") == "environment variable BOSCO_AWS_BUCKET"
    assert "AKIA1" not in repr(config.aws)  # the secret fields are left out of the repr


@pytest.mark.parametrize("text, found", [("[1, 2]", "a list"), ('"cdn"', "a string"), ("null", "null")])
def test_a_configuration_file_that_is_not_an_object_says_what_it_holds(tmp_path: Path, text: str, found: str) -> None:
    settings = tmp_path / ".bosco" / "bosco.json"
    settings.parent.mkdir()
    settings.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, "local", env={"HOME": str(tmp_path)})
    assert str(info.value) == f"{settings}: must hold a JSON object, not {found}"
    assert info.value.hint == 'write the settings as one object, e.g. {"cdn": {"port": 7334}} (docs/configuration.md)'


@pytest.mark.parametrize("dotted", [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in fields(cls)])
def test_every_section_key_is_checked_and_the_error_names_the_file(tmp_path: Path, dotted: str) -> None:
    section, key = dotted.split(".")
    settings = tmp_path / ".bosco" / "prod.json"
    settings.parent.mkdir()
    text = json.dumps({section: {key: [1]}})
    settings.write_text(text)
    valid = next(f.metadata["valid"] for f in fields(SECTIONS[section]) if f.name == key)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, "prod", env={"HOME": str(tmp_path)})
    shown = "****" if key in ("key", "secret") else "[1]"  # secret values are never echoed
    column = text.index(f'"{key}"') + 1
    assert str(info.value) == f"{settings}:1:{column}: {dotted} must be {valid}, not {shown}"
    assert info.value.hint == f"fix {dotted} in {settings}"


@pytest.mark.parametrize("section", list(SECTIONS))
def test_strict_refuses_an_unknown_key_in_every_section(tmp_path: Path, section: str) -> None:
    settings = tmp_path / ".bosco" / "bosco.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({section: {"zzz": 1}}))
    assert load_config(tmp_path, "local", env={"HOME": str(tmp_path)}).warnings == ()  # not a typo of a known key
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, "local", env={"HOME": str(tmp_path)}, strict=True)
    assert str(info.value) == f"{settings}: unknown key {section}.zzz"
