"""The reference shipped in the package (docs/): the manifest JSON Schema agrees with the loader, the
Python API example runs, ``bosco schema``/``bosco docs`` print the packaged files, and nothing the
project ships cites the team's internal design document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from bosco import docs
from bosco.assetset import type_info
from bosco.cli import cli
from bosco.errors import ManifestError
from bosco.fragments import render_fragment
from bosco.manifest import parse_manifest

from conftest import EXAMPLE, FIXTURES, REPO

SCHEMA = json.loads((REPO / "docs" / "bosco-service.schema.json").read_text())
validator = jsonschema.Draft202012Validator(SCHEMA)
MANIFESTS = sorted([*EXAMPLE.glob("*/bosco-service.json"), *FIXTURES.glob("*/*/bosco-service.json")])


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_shipped_manifest_is_valid_for_the_schema(path):
    data = json.loads(path.read_text())
    parse_manifest(data, path)  # the loader accepts it
    assert list(validator.iter_errors(data)) == []


MANIFEST_EXAMPLE = json.loads(re.search(r"```json\n(.*?)```", docs.page("manifest"), re.S).group(1))


def test_the_reference_example_is_valid_for_the_schema_and_the_loader():
    assert list(validator.iter_errors(MANIFEST_EXAMPLE)) == []
    manifest = parse_manifest(MANIFEST_EXAMPLE, Path("bosco-service.json"))
    assert [(b.type, b.tag) for s in manifest.sections for b in s.bundles] == [
        ("js", "top"), ("js", "bottom"), ("css", "main"), ("img", "main"), ("js", "vendor-min")]


# Manifests the loader refuses; the schema must refuse them too (editors flag what bosco rejects).
@pytest.mark.parametrize("data", [
    {"service": {"name": "a/b"}},
    {"service": {"name": ".."}},
    {"tags": "front"},
    {"tags": [1]},
    {"assets": {"js": {"top": [1]}}},
    {"assets": {"alreadyMinified": "yes"}},
    {"assets": {"sourceMapExtension": ""}},
    {"assets": {"basePath": 3}},
    {"assets": {"js": {"a/b": ["x.js"]}}},
    {"files": {"top": {"js": {"nested": ["x.js"]}}}},
    {"files": {"..": {"js": ["x.js"]}}},
    {"libraries": [{"basePath": "lib"}]},
    {"siteAssets": {"glob": "*"}},
    {"build": {"command": ""}},
    {"build": {"command": []}},
    {"build": {"watch": {"timeout": 0}}},
    {"build": {"watch": {"ready": ""}}},
], ids=lambda d: json.dumps(d))
def test_schema_refuses_what_the_loader_refuses(data):
    with pytest.raises(ManifestError):
        parse_manifest(data, Path("bosco-service.json"))
    assert list(validator.iter_errors(data)) != []


def test_other_tools_keys_are_valid():
    data = {"service": {"name": "redis", "type": "docker", "docker": {"image": "redis"}, "dependsOn": ["x"]},
            "tags": []}
    assert list(validator.iter_errors(data)) == []


def test_bosco_schema_prints_the_packaged_schema():
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SCHEMA


def test_bosco_docs_lists_and_prints_pages():
    listing = CliRunner().invoke(cli, ["docs"], catch_exceptions=False)
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == list(docs.TOPICS)
    page = CliRunner().invoke(cli, ["docs", "manifest"], catch_exceptions=False)
    assert page.stdout == (REPO / "docs" / "manifest.md").read_text()
    unknown = CliRunner().invoke(cli, ["docs", "manifests"])
    assert unknown.exit_code == 2
    assert "'manifests' is not a page; pages: manifest, configuration, commands, layout, api" in unknown.output


def test_python_api_example_runs(example, monkeypatch):
    code = re.search(r"```python\n(.*?)```", docs.page("api"), re.S).group(1)
    monkeypatch.chdir(example.parent)
    (example.parent / "examples").mkdir()
    example.rename(example.parent / "examples" / "workspace")
    exec(compile(code, "docs/api.md", "exec"), {})
    written = example.parent / "out"
    assert (written / "app-home" / "7" / "js" / "bottom.js").is_file()
    assert json.loads((written / "app-home" / "releases.json").read_text())["current"] == "7"


def test_layout_shows_the_fragment_lines_bosco_writes():
    page = docs.page("layout")
    for type_ in ("js", "css"):
        line = render_fragment(type_, [("URL", None)]).strip()
        assert f"`{line}`" in " ".join(page.split())


def test_layout_and_readme_name_the_compressed_and_stored_as_is_types_as_the_table_does():
    compressible = {ext: type_info(f"x{ext}")[2]
                    for ext in (".ttf", ".otf", ".woff", ".woff2", ".wasm", ".svg", ".png", ".pdf")}
    assert compressible == {".ttf": True, ".otf": True, ".woff": False, ".woff2": False, ".wasm": True,
                            ".svg": True, ".png": False, ".pdf": False}
    for text in (docs.page("layout"), (REPO / "README.md").read_text()):
        flat = " ".join(text.split())
        assert "TrueType/OpenType fonts" in flat and "images, WOFF fonts, video, audio, PDFs and archives" in flat


def test_nothing_shipped_cites_the_internal_design_document():
    shipped = [REPO / "README.md", *(REPO / "docs").iterdir(), *(REPO / "templates").iterdir(),
               *[p for folder in ("bosco", "tests", "bench") for p in (REPO / folder).rglob("*.py")]]
    citing = [str(p.relative_to(REPO)) for p in shipped
              if p.is_file() and p != Path(__file__) and re.search(r"DESIGN\b|\b[Ii]ssue #?\d", p.read_text())]
    assert citing == []
