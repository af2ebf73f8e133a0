"""bosco build --out: the local-directory target of the same release code as s3push."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from bosco.config import load_config
from bosco.pipeline import BuildOptions, build_asset_set
from bosco.publish.local import Staged, Staging, load_state
from bosco.workspace import discover_services

from .s3support import MANIFESTS, REGION, run, write_workspace


def built(workspace: Path, base_url: str, build: str = "55"):
    services, _ = discover_services(workspace, load_config(workspace, "tes"))
    return build_asset_set(services, BuildOptions(build=build, minify=True, bundle=True, sri=True, base_url=base_url,
                                                  title=f"bosco tes/{build}"))


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_out_writes_raw_files_and_release_indexes(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {"cdn": "https://cdn.example.com/"})
    out = tmp_path / "out"
    result = run(workspace, "build", "--out", str(out), "-b", "55")
    assert result.exit_code == 0, result.output
    asset_set = built(workspace, "https://cdn.example.com/tes")
    written = files(out)
    indexes = {f"{s}/55/release.json" for s in MANIFESTS} | {f"{s}/releases.json" for s in MANIFESTS}
    assert set(written) == set(asset_set.outputs) | indexes
    for key, output in asset_set.outputs.items():
        assert written[key] == output.data, key
    assert b'src="https://cdn.example.com/tes/app-web/55/js/top.js"' in written["app-web/55/html/top.js.html"]
    index = json.loads(written["app-web/55/release.json"])
    assert [o["key"] for o in index["objects"]] == [k for k, o in asset_set.outputs.items() if o.service == "app-web"]
    top = next(o for o in index["objects"] if o["key"] == "app-web/55/js/top.js")
    assert top["stored"] == [{"key": "app-web/55/js/top.js", "encoding": "",
                              "size": len(asset_set.outputs["app-web/55/js/top.js"].data)}]
    assert f"wrote {len(written)} files" in result.stderr


def test_build_out_again_rewrites_nothing_and_keeps_other_files(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {})
    out = tmp_path / "out"
    assert run(workspace, "build", "--out", str(out)).exit_code == 0
    (out / "unrelated.txt").write_text("kept")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = run(workspace, "build", "--out", str(out))
    assert again.exit_code == 0, again.output
    assert f"wrote 0 files (0 bytes), {len(before) - 1} unchanged" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert b'src="/app-web/default/js/top.js"' in (out / "app-web/default/html/top.js.html").read_bytes()


def test_build_out_rewrites_changed_or_deleted_files_whose_hash_it_remembers(tmp_path):
    """A later run trusts a file by its recorded stat, but a file edited (even back to the same size
    and mtime), replaced or deleted since is rewritten with the right bytes."""
    workspace = write_workspace(tmp_path / "ws", {})
    out = tmp_path / "out"
    assert run(workspace, "build", "--out", str(out)).exit_code == 0
    expected = files(out)
    state = load_state(out)["files"]  # what the next run trusts by stat
    assert {key: entry[5] for key, entry in state.items()} == {
        key: hashlib.sha256(data).hexdigest() for key, data in expected.items()}
    bundle, favicon, fragment = (out / "app-web/default/js/top.js", out / "asset/favicon.ico",
                                 out / "app-web/default/html/top.js.html")
    st = bundle.stat()
    bundle.write_bytes(b"X" * st.st_size)  # same size, mtime put back: only the ctime tells
    os.utime(bundle, ns=(st.st_atime_ns, st.st_mtime_ns))
    favicon.write_bytes(b"tampered")
    fragment.unlink()
    again = run(workspace, "build", "--out", str(out))
    assert again.exit_code == 0, again.output
    assert "wrote 5 files" in again.stderr  # the three, and app-web's release.json and releases.json
    assert files(out) == expected
    third = run(workspace, "build", "--out", str(out))
    assert f"wrote 0 files (0 bytes), {len(expected)} unchanged" in third.stderr


def test_build_out_with_errors_writes_nothing(tmp_path):
    workspace = write_workspace(tmp_path / "ws", {})
    manifest = json.loads(json.dumps(MANIFESTS["app-other"]))
    manifest["assets"]["js"]["bottom"] = ["nope.js"]
    (workspace / "app-other" / "bosco-service.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    result = run(workspace, "build", "--out", str(out))
    assert result.exit_code == 1
    assert f"1 error; nothing written to {out}" in result.stderr
    assert not out.exists()


def test_a_build_out_that_fails_after_services_were_staged_leaves_the_folder_as_it_was(tmp_path):
    # app-other is built first: its changed bundle and map are written ahead into a staging folder
    # inside --out; app-web, built next, fails: the release already there stays whole, nothing is left over
    workspace = write_workspace(tmp_path / "ws", {})
    out = tmp_path / "out"
    assert run(workspace, "build", "--out", str(out)).exit_code == 0

    def tree() -> dict[str, bytes | None]:
        return {p.relative_to(out).as_posix(): p.read_bytes() if p.is_file() else None for p in sorted(out.rglob("*"))}

    before = tree()
    (workspace / "app-other" / "src" / "x.js").write_text("var changed = 2;\n")
    manifest = json.loads(json.dumps(MANIFESTS["app-web"]))
    manifest["assets"]["js"]["top"] = ["js/nope.js"]
    (workspace / "app-web" / "bosco-service.json").write_text(json.dumps(manifest))
    for folder in (out, tmp_path / "new"):
        result = run(workspace, "build", "--out", str(folder))
        assert result.exit_code == 1 and f"1 error; nothing written to {folder}" in result.stderr
    assert tree() == before
    assert not (tmp_path / "new").exists()


def test_a_build_out_holds_no_bundle_or_map_bytes_once_a_service_is_built(tmp_path):
    # each service's bundles and maps go to the staging folder as soon as it is built (the bench's
    # 20 services: 95 MB held until the end, the build's peak 200 MB); the release written is the same
    workspace = write_workspace(tmp_path / "ws", {})
    services, _ = discover_services(workspace, load_config(workspace, "tes"))
    options = BuildOptions(build="55", minify=True, bundle=True)
    expected = build_asset_set(services, options).outputs
    with Staging(tmp_path / "out") as staging:
        staged = build_asset_set(services, options, each=staging.stage).outputs
        staging.wait()
        assert staging.folder is not None and staging.folder.parent == tmp_path / "out"
        assert staging.folder.name.startswith(".bosco-staging-")
        assert set(staged) == set(expected)
        large = [key for key, o in expected.items() if o.kind in ("bundle", "map")]
        assert len(large) == 6
        for key, output in staged.items():
            assert isinstance(output.data, Staged) == (key in large), key
            assert (len(output.data), output.sha256) == (len(expected[key].data), expected[key].sha256)
            assert bytes(output.data) == expected[key].data and output.data == expected[key].data
            if output.kind == "bundle":
                assert output.sri == expected[key].sri
    assert not (tmp_path / "out").exists()  # made for the staging folder, left empty: removed


def test_staging_waits_for_its_writer_past_the_bytes_it_may_hold(tmp_path, monkeypatch):
    # a disk slower than the build: what waits for the writer stays bounded (Staging.IN_FLIGHT)
    from bosco.publish import local

    workspace = write_workspace(tmp_path / "ws", {})
    services, _ = discover_services(workspace, load_config(workspace, "tes"))
    events: list[str] = []
    real_write = local._write_new

    def slow_write(path: Path, data: bytes) -> None:
        time.sleep(0.05)  # the slow disk
        real_write(path, data)
        events.append("written")

    monkeypatch.setattr(local, "_write_new", slow_write)
    monkeypatch.setattr(Staging, "IN_FLIGHT", 0)
    with Staging(tmp_path / "out") as staging:
        def stage(result):
            staged = staging.stage(result)
            events.append("staged")
            return staged

        build_asset_set(services, BuildOptions(build="55", minify=True, bundle=True), each=stage)
    assert events == ["written", "written", "staged"] + ["written"] * 4 + ["staged"]


def test_build_out_and_s3push_write_the_same_release(tmp_path, moto_url, s3, bucket):
    workspace = write_workspace(tmp_path / "ws", {"bucket": bucket, "endpoint": moto_url, "region": REGION,
                                                  "cdn": "https://cdn.example.com"})
    out = tmp_path / "out"
    assert run(workspace, "build", "--out", str(out), "-b", "9").exit_code == 0
    assert run(workspace, "s3push", "-n", "-b", "9").exit_code == 0
    local = json.loads((out / "app-web/9/release.json").read_bytes())
    remote = json.loads(s3.get_object(Bucket=bucket, Key="tes/app-web/9/release.json")["Body"].read())
    strip = ("stored",)
    assert [{k: v for k, v in o.items() if k not in strip} for o in local["objects"]] == \
        [{k: v for k, v in o.items() if k not in strip} for o in remote["objects"]]
    for key, data in files(out).items():
        if not key.endswith(("release.json", "releases.json")):
            stored = s3.head_object(Bucket=bucket, Key=f"tes/{key}")["Metadata"]["sha256"]
            assert stored == hashlib.sha256(data).hexdigest(), key
