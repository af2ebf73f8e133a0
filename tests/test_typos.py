""""Did you mean": keys one typo away from a key bosco reads are warned, keys of other tools are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bosco.cli import cli
from bosco.config import load_config
from bosco.errors import ConfigError
from bosco.manifest import parse_manifest

PATH = Path("svc/bosco-service.json")


@pytest.mark.parametrize(("data", "warning"), [
    ({"asset": {"js": {"top": ["a.js"]}}}, "unknown key asset ignored; did you mean assets?"),
    ({"file": {"top": {"js": ["a.js"]}}}, "unknown key file ignored; did you mean files?"),
    ({"librarys": [{"glob": "*.js"}]}, "unknown key librarys ignored; did you mean libraries?"),
    ({"siteassets": [{"glob": "*"}]}, "unknown key siteassets ignored; did you mean siteAssets?"),
    ({"assets": {"basepath": "public", "js": {"top": ["a.js"]}}},
     "unknown key assets.basepath ignored; did you mean assets.basePath?"),
    ({"files": {"top": {"basepath": "src", "js": ["a.js"]}}},
     "unknown key files.top.basepath ignored; did you mean files.top.basePath?"),
    ({"files": {"top": {"alreadyminified": True, "js": ["a.js"]}}},
     "unknown key files.top.alreadyminified ignored; did you mean files.top.alreadyMinified?"),
    ({"assets": {"cs": {"main": ["a.css"]}}}, "unknown key assets.cs ignored; did you mean assets.css?"),
    ({"libraries": [{"basepath": "lib", "glob": "*.js"}]},
     "unknown key libraries[0].basepath ignored; did you mean libraries[0].basePath?"),
    ({"build": {"comand": "make"}}, "unknown key build.comand ignored; did you mean build.command?"),
    ({"build": {"watch": {"command": "w", "readdy": "done"}}},
     "unknown key build.watch.readdy ignored; did you mean build.watch.ready?"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else "")
def test_a_misspelt_manifest_key_is_a_warning_naming_the_key_it_means(data, warning):
    assert parse_manifest(data, PATH).warnings == (f"{PATH}: {warning}",)


def test_an_unknown_asset_type_close_to_nothing_lists_the_types():
    assert parse_manifest({"assets": {"images": {"main": ["a.png"]}}}, PATH).warnings == (
        f"{PATH}: unknown asset type assets.images ignored (known: js, css, img, html, swf, fonts, pdf, json)",)


def test_keys_of_other_tools_stay_silent():
    data = {"service": {"name": "sftp", "type": "docker", "registry": "docker.io", "alwaysPull": True,
                        "docker": {"HostConfig": {}}, "dependsOn": ["infra-redis"]},
            "tags": ["sftp"], "docker": {"image": "x"}, "dependsOn": ["y"], "scripts": {}, "name": "x"}
    assert parse_manifest(data, PATH).warnings == ()


def workspace(root: Path, **files: dict) -> Path:
    (root / ".bosco").mkdir(parents=True)
    for name, data in files.items():
        (root / ".bosco" / f"{name}.json").write_text(json.dumps(data))
    return root


def test_misspelt_config_keys_and_variables_are_warnings_naming_their_origin(tmp_path):
    root = workspace(tmp_path / "ws", tes={"aws": {"buckett": "b", "region": "eu-west-1"}},
                     bosco={"cdn": {"prot": 8000}, "fragment": {"sri": False}, "github": {"team": "x"}})
    env = {"BOSCO_AWS_BUCKETT": "b2", "BOSCO_CAHCE": "0", "BOSCO_CACHE": "0", "BOSCO_CDNPORT": "1",
           "HOME": str(tmp_path / "home")}
    config = load_config(root, "tes", env=env)
    workspace_file, env_file = root / ".bosco" / "bosco.json", root / ".bosco" / "tes.json"
    assert config.warnings == (
        f"{workspace_file}: unknown key cdn.prot ignored; did you mean cdn.port?",
        "environment variable BOSCO_AWS_BUCKETT: unknown key aws.buckett ignored; did you mean BOSCO_AWS_BUCKET?",
        f"{workspace_file}: unknown key fragment ignored; did you mean fragments?",
        "environment variable BOSCO_CAHCE is not one bosco reads; did you mean BOSCO_CACHE?",
        "environment variable BOSCO_CDNPORT is not one bosco reads; did you mean BOSCO_CDN_PORT?",
    )
    assert config.cdn.port == 7334  # the misspelt key changed nothing
    assert str(env_file) in config.sources


def test_unknown_keys_close_to_nothing_are_silent_unless_strict(tmp_path):
    root = workspace(tmp_path / "ws", bosco={"cdn": {"minifiers": 1}, "aws": {"key": "k", "secret": "s"},
                                             "github": {"team": "x"}, "repos": []})
    assert load_config(root, "local", env={}).warnings == ()
    with pytest.raises(ConfigError) as info:
        load_config(root, "local", env={}, strict=True)
    assert str(info.value) == f"{root / '.bosco' / 'bosco.json'}: unknown key cdn.minifiers"  # failed: not ignored


def test_an_environment_without_its_file_is_a_warning_naming_the_closest(tmp_path):
    root = workspace(tmp_path / "ws", bosco={}, prod={}, staging={})
    assert load_config(root, "prod", env={}).warnings == ()
    assert load_config(root, "local", env={}).warnings == ()
    assert load_config(root, "prd", env={}).warnings == (
        f"environment prd: no {root / '.bosco' / 'prd.json'}; its settings come from the other layers only; "
        "did you mean -e prod? (environments with a file: prod, staging)",)


def test_cli_prints_config_warnings_and_strict_fails(example, monkeypatch):
    monkeypatch.setenv("HOME", str(example / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    settings = example / ".bosco" / "bosco.json"
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "aws": {"buckett": "b"}}))
    runner = CliRunner()
    result = runner.invoke(cli, ["-W", str(example), "-e", "prod", "config"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[:2] == [
        f"warning: {settings}: unknown key aws.buckett ignored; did you mean aws.bucket?",
        f"warning: environment prod: no {example / '.bosco' / 'prod.json'}; its settings come from the other "
        "layers only",
    ]
    strict = runner.invoke(cli, ["-W", str(example), "config", "--strict"], catch_exceptions=False)
    assert strict.exit_code == 1
    assert strict.stderr.splitlines()[0] == (
        f"error: {settings}: unknown key aws.buckett; did you mean aws.bucket?")
