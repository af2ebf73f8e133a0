"""Workspace root and service discovery, filters, layered configuration, per-service errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bosco.config import CdnSection, load_config
from bosco.errors import BoscoError, ConfigError
from bosco.workspace import discover_services, filter_services, find_root

from conftest import FIXTURES, build

KEYS = FIXTURES / "keys"


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def services_of(root: Path, **env):
    services, warnings = discover_services(root, load_config(root, "local", env=env))
    return services, warnings


def test_root_is_nearest_ancestor_with_dot_bosco(tmp_path):
    (tmp_path / ".bosco").mkdir()
    (tmp_path / "svc" / "src").mkdir(parents=True)
    assert find_root(tmp_path / "svc" / "src") == tmp_path
    assert find_root(tmp_path / "svc", explicit=tmp_path / "svc") == tmp_path / "svc"


def test_root_without_dot_bosco_is_the_current_folder(tmp_path):
    assert find_root(tmp_path) == tmp_path


def test_missing_explicit_workspace_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="workspace folder does not exist"):
        find_root(tmp_path, explicit=tmp_path / "nope")


def test_services_are_subfolders_with_manifests_sorted_and_named(tmp_path):
    services, _ = services_of(KEYS)
    assert [(s.name, s.path.name) for s in services] == [
        ("svc-a", "svc-a"), ("svc-b", "svc-b"), ("custom-name", "svc-c"), ("svc-d", "svc-d")]


def test_repos_list_restricts_and_orders(tmp_path):
    for name in ["one", "two", "three"]:
        write(tmp_path / name / "bosco-service.json", {})
    write(tmp_path / ".bosco" / "bosco.json", {"repos": ["three", "one", "ghost"]})
    services, warnings = services_of(tmp_path)
    assert [s.name for s in services] == ["three", "one"]
    assert warnings == [f"repo ghost (from repos) has no {tmp_path / 'ghost' / 'bosco-service.json'}; skipped"]


def test_a_folder_repos_lists_twice_is_one_service_and_a_warning(tmp_path):
    for name in ["one", "two"]:
        write(tmp_path / name / "bosco-service.json", {})
    write(tmp_path / ".bosco" / "bosco.json", {"repos": ["one", "two", "one", "./two/"]})
    services, warnings = services_of(tmp_path)
    assert [(s.name, s.error) for s in services] == [("one", None), ("two", None)]
    config_file = tmp_path / ".bosco" / "bosco.json"
    assert warnings == [
        f"{config_file}: repos lists the folder one more than once; it is one service (remove the repeated entry)",
        f"{config_file}: repos lists the folder ./two/ more than once; it is one service (remove the repeated entry)"]


def test_services_sharing_a_name_are_one_error_and_the_others_load(tmp_path):
    write(tmp_path / "a" / "bosco-service.json", {"service": {"name": "same"}})
    write(tmp_path / "b" / "bosco-service.json", {"service": {"name": "other"}})
    write(tmp_path / "c" / "bosco-service.json", {"service": {"name": "same"}})
    services, _ = services_of(tmp_path)
    assert [(s.name, s.path.name, s.manifest is None) for s in services] == [("same", "a", True), ("other", "b", False)]
    assert services[0].error == ("2 services are named 'same' (folders a and c), so none of them is built; "
                                 "give each a different service.name in its bosco-service.json")


def test_filters_repo_regex_tag_and_current_service():
    services, _ = services_of(KEYS)
    assert [s.name for s in filter_services(services, repo="svc-[ab]")] == ["svc-a", "svc-b"]
    assert [s.name for s in filter_services(services, repo="^custom")] == ["custom-name"]
    assert [s.name for s in filter_services(services, service_tag="front")] == ["svc-a", "custom-name"]
    assert [s.name for s in filter_services(services, repo="svc", service_tag="front")] == ["svc-a"]
    assert [s.name for s in filter_services(services, current=KEYS / "svc-c" / "web")] == ["custom-name"]
    with pytest.raises(BoscoError, match="is not inside any service"):
        filter_services(services, current=KEYS)
    with pytest.raises(BoscoError, match="not a valid regular expression"):
        filter_services(services, repo="(")


def test_config_layers_merge_deeply_with_the_higher_winning(tmp_path):
    home = tmp_path / "home"
    write(home / ".config" / "bosco" / "bosco.json", {"cdn": {"port": 7000}, "aws": {"region": "eu-west-1"}})
    write(tmp_path / "ws" / ".bosco" / "bosco.json", {"cdn": {"url": "http://cdn.local"}, "aws": {"bucket": "b"}})
    write(tmp_path / "ws" / ".bosco" / "tes.json", {"aws": {"bucket": "tes-bucket", "cdn": "https://cdn.tes"}})
    config = load_config(tmp_path / "ws", "tes", {"cdn": {"host": "0.0.0.0"}},
                         env={"HOME": str(home), "BOSCO_AWS_MAXAGE": "60"})
    assert config.cdn == CdnSection(host="0.0.0.0", port=7000, url="http://cdn.local")
    assert (config.aws.region, config.aws.bucket, config.aws.maxage) == ("eu-west-1", "tes-bucket", 60)
    assert config.css.minifier == "rcssmin"
    assert config.sources == (str(home / ".config/bosco/bosco.json"), str(tmp_path / "ws/.bosco/bosco.json"),
                              str(tmp_path / "ws/.bosco/tes.json"))


def test_config_masks_secrets(tmp_path):
    write(tmp_path / ".bosco" / "bosco.json", {"aws": {"key": "AKIA123", "secret": "s3cr3t", "bucket": "b"},
                                               "github": {"authToken": "ghp_x"}})
    masked = load_config(tmp_path, "local", env={"HOME": str(tmp_path)}).masked()
    assert masked["aws"]["key"] == "****" and masked["aws"]["secret"] == "****"
    assert masked["github"]["authToken"] == "****"
    assert masked["aws"]["bucket"] == "b"


def test_invalid_config_json_names_file_line_column(tmp_path):
    path = write(tmp_path / ".bosco" / "bosco.json", '{"cdn": {"port": 70,}}')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, "local", env={"HOME": str(tmp_path)})
    assert str(info.value) == f"{path}:1:20: invalid JSON: trailing comma before '}}' (JSON allows none)"


def test_broken_manifest_does_not_stop_the_other_services(tmp_path):
    write(tmp_path / "good" / "bosco-service.json", {"assets": {"js": {"top": ["a.js"]}}})
    write(tmp_path / "good" / "a.js", "1;")
    bad = write(tmp_path / "bad" / "bosco-service.json", '{"assets": ')
    asset_set = build(tmp_path)
    assert "good/local/a.js" in asset_set.outputs
    message = f"{bad}:1:12: invalid JSON: the file ends too early (a value or a closing bracket is missing)"
    assert asset_set.errors == [f"bad: {message}"]
    index = asset_set.get("index.html").data.decode()
    assert ('<p class="error">bosco-service.json:1:12: invalid JSON: the file ends too early (a value or a '
            'closing bracket is missing)</p>') in index


def test_missing_file_is_an_error_entry_on_the_index_page(tmp_path):
    write(tmp_path / "svc" / "bosco-service.json", {"assets": {"js": {"top": ["a.js", "gone.js"]}}})
    write(tmp_path / "svc" / "a.js", "1;")
    asset_set = build(tmp_path)
    assert "svc/local/a.js" in asset_set.outputs
    assert asset_set.errors == [f"svc: js/top: gone.js: no file matches under {tmp_path / 'svc'}"]
    assert '<div class="error">gone.js: no file matches under .</div>' in (
        asset_set.get("index.html").data.decode())


BUILD_SCRIPT = (
    "import pathlib; pathlib.Path('out').mkdir(exist_ok=True); pathlib.Path('out/app.js').write_text('built();')"
)


def build_service(tmp_path: Path, command) -> Path:
    write(tmp_path / "svc" / "bosco-service.json",
          {"assets": {"basePath": "out", "js": {"app": ["app.js"]}}, "build": {"command": command}})
    return tmp_path


def test_build_command_runs_when_assets_are_missing(tmp_path):
    root = build_service(tmp_path, [sys.executable, "-c", BUILD_SCRIPT])
    asset_set = build(root)
    assert asset_set.errors == []
    assert asset_set.get("svc/local/app.js").data == b"built();"


def test_build_command_is_skipped_when_assets_exist_unless_rebuild(tmp_path):
    root = build_service(tmp_path, f"{sys.executable} -c \"{BUILD_SCRIPT}\"")
    write(tmp_path / "svc" / "out" / "app.js", "old();")
    assert build(root).get("svc/local/app.js").data == b"old();"
    assert build(root, rebuild=True).get("svc/local/app.js").data == b"built();"


def test_failing_build_command_reports_exit_code_and_output_tail(tmp_path):
    root = build_service(tmp_path, [sys.executable, "-c", "import sys; print('compiling'); print('boom'); sys.exit(3)"])
    asset_set = build(root)
    command = f"{sys.executable} -c import sys; print('compiling'); print('boom'); sys.exit(3)"
    assert asset_set.errors[0] == f"svc: build command `{command}` failed with exit code 3\ncompiling\nboom"


@pytest.mark.parametrize("env, message", [
    ({"BOSCO_CDN_PORT": "notanumber"},
     'environment variable BOSCO_CDN_PORT: cdn.port must be a whole number from 0 to 65535, not "notanumber"'),
    ({"BOSCO_CDN_PORT": "99999"},
     "environment variable BOSCO_CDN_PORT: cdn.port must be a whole number from 0 to 65535, not 99999"),
    ({"BOSCO_AWS_MAXAGE": "abc"},
     'environment variable BOSCO_AWS_MAXAGE: aws.maxage must be a whole number of seconds, not "abc"'),
])
def test_bad_config_values_from_the_environment_name_the_variable(tmp_path, env, message):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, "local", env={"HOME": str(tmp_path), **env})
    assert str(info.value) == message


@pytest.mark.parametrize("layer, where, message", [
    ({"cdn": 5}, "2:3", 'cdn must be an object like {"host": "127.0.0.1", "port": 7334, "url": null}'),
    ({"cdn": {"port": 99999}}, "3:5", "cdn.port must be a whole number from 0 to 65535, not 99999"),
    ({"cdn": {"host": "::1", "port": 99999}}, "4:5", "cdn.port must be a whole number from 0 to 65535, not 99999"),
    ({"fragments": {"sri": "no"}}, "3:5", 'fragments.sri must be true or false, not "no"'),
    ({"css": {"minifier": "yui"}}, "3:5", 'css.minifier must be "rcssmin" or "csscompressor", not "yui"'),
])
def test_bad_config_values_in_a_file_name_the_file_and_line(tmp_path, layer, where, message):
    path = write(tmp_path / ".bosco" / "bosco.json", json.dumps(layer, indent=2))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, "local", env={"HOME": str(tmp_path)})
    assert str(info.value) == f"{path}:{where}: {message}"
    assert info.value.hint == f"fix {message.split()[0]} in {path}"


def test_environment_variables_override_camel_case_keys(tmp_path):
    write(tmp_path / ".bosco" / "bosco.json", {"aws": {"secretAccessKey": "A"}})
    config = load_config(tmp_path, "local", env={"HOME": str(tmp_path), "BOSCO_AWS_SECRETACCESSKEY": "B"})
    assert config.values["aws"]["secretAccessKey"] == "B"
    assert "secretaccesskey" not in config.values["aws"]
