"""Manifest loading and validation (docs/manifest.md), errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bosco.assets import collect, expand
from bosco.errors import ManifestError
from bosco.manifest import BuildSpec, load_manifest, parse_manifest


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "svc" / "bosco-service.json", '{\n  "service": {"name": "x"},\n  "tags": [1,]\n}\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value) == f"{path}:3:13: invalid JSON: trailing comma before ']' (JSON allows none)"
    assert info.value.hint == "fix bosco-service.json (reference: `bosco docs manifest`, docs/manifest.md)"


def test_manifest_with_bom_loads(tmp_path):
    path = tmp_path / "bosco-service.json"
    path.write_bytes("\ufeff".encode() + b'{"service": {"name": "bom"}}')
    assert load_manifest(path).name == "bom"


@pytest.mark.parametrize("base", ["/public", "public", "public/", "./public", "public/./"])
def test_base_path_forms_all_resolve_inside_the_repo(tmp_path, base):
    path = write(tmp_path / "bosco-service.json", {"assets": {"basePath": base, "js": {"top": ["a.js"]}}})
    write(tmp_path / "public" / "a.js", "1;")
    manifest = load_manifest(path)
    assert manifest.sections[0].base_path == "public"
    [bundle] = collect(tmp_path, manifest).bundles
    assert [a.path for a in bundle.assets] == [tmp_path / "public" / "a.js"]
    assert bundle.assets[0].rel == "a.js" and bundle.assets[0].repo_rel == "public/a.js"


@pytest.mark.parametrize("base", ["..", "../other", "public/../../x"])
def test_base_path_escaping_the_repo_is_an_error(tmp_path, base):
    path = write(tmp_path / "bosco-service.json", {"assets": {"basePath": base, "js": {"top": ["a.js"]}}})
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value) == f"{path}:1:13: assets.basePath {base!r} points outside the repository"


def test_glob_escaping_the_repo_is_an_error_entry(tmp_path):
    (tmp_path / "repo").mkdir()
    assert expand(tmp_path / "repo", "", "../x.js") == (
        [], "../x.js: must be relative to basePath and stay inside the repository")
    assert expand(tmp_path / "repo", "", "/etc/passwd")[1] == (
        "/etc/passwd: must be relative to basePath and stay inside the repository")


def test_symlink_escaping_the_repo_is_an_error_entry(tmp_path):
    outside = write(tmp_path / "secret.js", "secret")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "link.js").symlink_to(outside)
    assert expand(tmp_path / "repo", "", "*.js") == ([], f"link.js: resolves outside the repository ({outside})")


def test_glob_matching_nothing_is_an_error_entry(tmp_path):
    (tmp_path / "repo" / "js").mkdir(parents=True)
    assert expand(tmp_path / "repo", "js", "missing.js") == (
        [], f"missing.js: no file matches under {tmp_path / 'repo' / 'js'}")


def test_braces_and_globstar(tmp_path):
    for name in ["a/x.js", "a/b/y.js", "c/z.css", "c/w.js"]:
        write(tmp_path / name, "")
    found, error = expand(tmp_path, "", "{a/**/*.js,c/*.css}")
    assert error is None
    assert [rel for _, rel in found] == ["a/b/y.js", "a/x.js", "c/z.css"]


def linked_tree(repo: Path) -> Path:
    """A repo whose ``public/js`` holds real folders and symbolic links to folders inside the repo:
    ``link`` -> ``shared`` (which holds ``sub/deeper``), ``link2`` -> ``real``, ``real/inner`` ->
    ``shared/sub``, and ``shared/loop`` -> the repo itself (a loop)."""
    for name in ["public/js/a.js", "public/js/real/b.js", "shared/c.js", "shared/sub/d.js", "shared/sub/deeper/e.js"]:
        write(repo / name, "")
    (repo / "public/js/link").symlink_to("../../shared")
    (repo / "public/js/link2").symlink_to("real")
    (repo / "public/js/real/inner").symlink_to("../../../shared/sub")
    (repo / "shared/loop").symlink_to("..")
    return repo


# node-glob 7.2.3's own answers (glob.sync(pattern, {cwd: "public", nodir: true}) on linked_tree): `**`
# goes down through real folders and may end at a symbolic link to a folder (Bash 4.3's rule)
NODE_GLOB_7 = {
    "js/**/*.js": ["js/a.js", "js/link/c.js", "js/link2/b.js", "js/real/b.js", "js/real/inner/d.js"],
    "js/**/sub/*.js": ["js/link/sub/d.js"],
    "js/**/deeper/*.js": ["js/real/inner/deeper/e.js"],
    "js/**": ["js/a.js", "js/real/b.js"],
    "js/*/*.js": ["js/link/c.js", "js/link2/b.js", "js/real/b.js"],
    "js/link/**/*.js": ["js/link/c.js", "js/link/sub/d.js", "js/link/sub/deeper/e.js"],
    "js/*/**/*.js": ["js/link/c.js", "js/link/sub/d.js", "js/link/sub/deeper/e.js", "js/link2/b.js",
                     "js/link2/inner/d.js", "js/real/b.js", "js/real/inner/d.js"],
    "js/**/**/*.js": ["js/a.js", "js/link/c.js", "js/link/sub/d.js", "js/link/sub/deeper/e.js", "js/link2/b.js",
                      "js/link2/inner/d.js", "js/real/b.js", "js/real/inner/d.js", "js/real/inner/deeper/e.js"],
    "js/link/loop/**/*.js": ["js/link/loop/public/js/a.js", "js/link/loop/public/js/link/c.js",
                             "js/link/loop/public/js/link2/b.js", "js/link/loop/public/js/real/b.js",
                             "js/link/loop/public/js/real/inner/d.js", "js/link/loop/shared/c.js",
                             "js/link/loop/shared/sub/d.js", "js/link/loop/shared/sub/deeper/e.js"],
    "{js/link,js/real}/**/*.js": ["js/link/c.js", "js/link/sub/d.js", "js/link/sub/deeper/e.js", "js/real/b.js",
                                  "js/real/inner/d.js"],
}


@pytest.mark.parametrize("pattern", list(NODE_GLOB_7))
def test_globstar_follows_symlinked_folders_as_node_glob_7_does(tmp_path, pattern):
    repo = linked_tree(tmp_path / "repo")
    found, error = expand(repo, "public", pattern)
    assert error is None
    assert sorted(rel for _, rel in found) == NODE_GLOB_7[pattern]
    assert all(path == repo / "public" / rel for path, rel in found)


def test_a_symlinked_folder_that_leaves_the_repo_reached_by_globstar_is_an_error(tmp_path):
    # npm Bosco would have published the files behind it; bosco reads nothing outside the repo
    outside = write(tmp_path / "elsewhere" / "o.js", "secret")
    repo = linked_tree(tmp_path / "repo")
    (repo / "public/js/ext").symlink_to(outside.parent)
    assert expand(repo, "public", "js/**/*.js") == ([], f"js/ext/o.js: resolves outside the repository ({outside})")


def test_the_glob_walk_matches_wcmatch_where_no_folder_is_a_link(tmp_path):
    # bosco walks folders itself (wcmatch's ``**`` never ends at a link: Bash 5's rule); without
    # links both must agree, dotfiles, braces, classes and escapes included
    for name in ["a.js", ".hidden.js", "b/c.js", "b/.d/e.js", "b/f/g.JS", "b/f/h.js", "x{y}.js", "[k].js", "m*.js"]:
        write(tmp_path / name, "")
    from wcmatch import glob as wcglob

    from bosco.assets import _Walk
    from bosco.manifest import GLOB_FLAGS
    for pattern in ["*.js", "**/*.js", "**", "b/**", "b/*/*.js", "**/.d/*.js", "b/**/h.js", "**/*.{js,JS}",
                    "{a,b/c}.js", "?.js", "[ab].js", "b/[!f]*.js", "x\\{y\\}.js", "\\[k\\].js", "m\\*.js",
                    ".*.js", "b/.*/*", "./a.js", "b//c.js", "b/", "b/**/", "**/**/*.js", "*/**/*.js"]:
        assert sorted(_Walk(tmp_path)(pattern)) == sorted(wcglob.glob(pattern, root_dir=tmp_path, flags=GLOB_FLAGS)), \
            pattern


def test_every_shape_is_typed(tmp_path):
    path = write(tmp_path / "bosco-service.json", {
        "service": {"name": "svc"},
        "tags": ["a", "b"],
        "assets": {"basePath": "/public", "alreadyMinified": True, "sourceMapExtension": ".smap",
                   "js": {"top": "one.js"}, "doc": {"x": ["y"]}},
        "files": {"upload": {"basePath": "src", "css": ["*.css"]}},
        "libraries": [{"basePath": "lib", "glob": "**/*.js"}],
        "siteAssets": [{"glob": "*.ico"}],
        "build": {"command": ["python3", "build.py"], "watch": {"command": "npm run watch", "ready": "done"}},
    })
    manifest = load_manifest(path)
    assert manifest.name == "svc" and manifest.service_tags == ("a", "b")
    assets, upload = manifest.sections
    assert (assets.base_path, assets.already_minified, assets.source_map_extension) == ("public", True, ".smap")
    assert [(b.type, b.tag, b.globs) for b in assets.bundles] == [("js", "top", ("one.js",))]
    assert [(b.type, b.tag, b.globs) for b in upload.bundles] == [("css", "upload", ("*.css",))]
    assert upload.base_path == "src" and not upload.already_minified
    assert [(g.base_path, g.glob) for g in manifest.libraries] == [("lib", "**/*.js")]
    assert [(g.base_path, g.glob) for g in manifest.site_assets] == [("", "*.ico")]
    assert manifest.build == BuildSpec(("python3", "build.py"), "npm run watch", "done", 10000)
    assert manifest.warnings == (
        f"{path}: unknown asset type assets.doc ignored (known: js, css, img, html, swf, fonts, pdf, json)",)


SEGMENT_RULE = " (non-empty, at most 238 bytes, no '/', '\\' or control characters, not '.' or '..')"


@pytest.mark.parametrize("data, message", [
    ([], "must hold a JSON object"),
    ({"tags": "front"}, "tags must be a list of strings"),
    ({"assets": {"js": ["a.js"]}}, "assets.js must map bundle tags to lists of globs"),
    ({"assets": {"js": {"top": [1]}}}, "assets.js.top[0] must be a glob string, not a number"),
    ({"service": 0}, "service must be an object, not a number"),
    ({"service": []}, "service must be an object, not a list"),
    ({"files": ""}, "files must be an object mapping bundle tags to objects, not a string"),
    ({"files": {"t": {"js": ""}}}, "files.t.js[0]: a glob cannot be empty"),
    ({"assets": 0}, "assets must be an object, not a number"),
    ({"assets": {"js": {"top": {}}}}, "assets.js.top must be a glob string or a list of glob strings, not an object"),
    ({"assets": {"basePath": 5, "js": {"a": ["x"]}}}, "assets.basePath must be a string, not a number"),
    ({"build": False}, "build must be an object, not true or false"),
    ({"build": {"watch": []}}, "build.watch must be an object, not a list"),
    ({"libraries": {}}, "libraries must be a list of {basePath, glob} objects, not an object"),
    ({"files": {"t": {"alreadyMinified": "yes", "js": []}}}, "files.t.alreadyMinified must be true or false"),
    ({"libraries": [{"basePath": "lib"}]}, "libraries[0] must be an object with a string 'glob'"),
    ({"build": {"command": 5}}, "build.command must be a shell string or a list of strings"),
    *[({"build": {"watch": {"timeout": bad}}}, "build.watch.timeout must be a positive number of milliseconds "
       "up to 86400000 (one day)") for bad in ("10s", 0, -5, True, 1e30, 10**30, 86_400_001, 1.5)],
    ({"service": {"name": "a/b"}}, 'service.name "a/b" cannot be a key segment' + SEGMENT_RULE),
    ({"service": {"name": 0}}, "service.name must be a string, not a number"),
    ({"service": {"name": ["a"]}}, "service.name must be a string, not a list"),
    ({"assets": {"js": {"..": ["a.js"]}}}, 'assets.js: bundle tag ".." cannot be a key segment' + SEGMENT_RULE),
    ({"files": {"a/b": {"js": ["a.js"]}}}, 'files.a/b: bundle tag "a/b" cannot be a key segment' + SEGMENT_RULE),
])
def test_bad_shapes_name_the_file_and_key(tmp_path, data, message):
    path = write(tmp_path / "bosco-service.json", data)
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, path)  # the file's text is not at hand: the key, no line
    assert str(info.value) == f"{path}: {message}"
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    placed = str(info.value).removeprefix(f"{path}:")
    assert placed.endswith(f" {message}") and (message == "must hold a JSON object" or placed[0].isdigit())


@pytest.mark.parametrize("text, message", [
    ('{\n  "assets": {\n    "js": {\n      "main": ["a.js",\n               7]\n    }\n  }\n}\n',
     "5:16: assets.js.main[1] must be a glob string, not a number"),
    ('{\n  "service": {"name": "app"},\n  "assets": {\n    "css": {"main": 42}\n  }\n}\n',
     "4:13: assets.css.main must be a glob string or a list of glob strings, not a number"),
    ('{\n  "files": {\n    "t": {\n      "js": ""\n    }\n  }\n}\n', "4:7: files.t.js[0]: a glob cannot be empty"),
    ('{\n  "service": {"name": "app"},\n  "build": {"timeout": "10s"}\n}\n',
     '3:13: build.timeout must be a whole number of milliseconds from 1 to 86400000, not "10s"'),
    ('{\n  "assets": {\n    "js": {\n      "main": [],\n      "main": []\n    }\n  }\n}\n',
     '5:7: key "main" appears twice in one object; only one can count'),
])
def test_errors_name_the_line_and_column_of_the_key(tmp_path, text, message):
    path = write(tmp_path / "bosco-service.json", text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value) == f"{path}:{message}"


def test_null_counts_as_absent(tmp_path):
    path = write(tmp_path / "bosco-service.json",
                 {"service": None, "tags": None, "files": None, "assets": None, "build": {"watch": None}})
    manifest = load_manifest(path)
    assert (manifest.name, manifest.service_tags, manifest.sections, manifest.build.timeout_ms) == (None, (), (), 10000)


def test_duplicate_keys_are_an_error(tmp_path):
    path = write(tmp_path / "bosco-service.json", '{"assets": {"js": {"a": ["x.js"]}}, "assets": {}}')
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value) == f'{path}:1:37: key "assets" appears twice in one object; only one can count'


def test_empty_glob_list_warns(tmp_path):
    path = write(tmp_path / "bosco-service.json", {"assets": {"js": {"m": []}}})
    assert load_manifest(path).warnings == (f"{path}: assets.js.m lists no files; the bundle is empty",)


def test_glob_naming_a_folder_says_so(tmp_path):
    (tmp_path / "dir.js").mkdir()
    assert expand(tmp_path, "", "dir.js") == (
        [], f"dir.js: is a folder under {tmp_path}; list its files (e.g. dir.js/**/*)")
