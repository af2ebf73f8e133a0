""""Did you mean": keys one typo away from a key bosco reads are warned, keys of other tools are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
