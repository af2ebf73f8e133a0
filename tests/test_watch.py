"""bosco cdn -w: real files changed on disk in a tmp copy of a workspace, served over a real socket."""

from __future__ import annotations

import errno
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from live import TIMEOUT, atomic_write, until
from watchdog.observers.inotify import InotifyObserver

from bosco import pipeline as pipeline_module
from bosco.app import rebuild_fields, watched_services
from bosco.cli import cli
from bosco.config import load_config
from bosco.errors import BoscoError
from bosco.pipeline import BuildOptions
from bosco.server import AssetHolder
from bosco.ui import Console
from bosco.watch import INOTIFY_HINT, ServedAssetSet, WatchRoot, is_relevant, watch_roots
from bosco.workspace import discover_services, load_service

from conftest import linked_vendor

HOME_CSS = "app-home/local/css/home.css"
MAIN_CSS = "app-home/local/css/main.css"  # the concatenation of home.css's bundle
BOTTOM_FRAGMENT = "app-home/local/html/bottom.js.html"


def test_plain_write_serves_new_bytes(live, example: Path) -> None:
    w = live()
    (example / "app-home/public/css/home.css").write_bytes(b".hero { color: red; }\n")
    w.wait_bytes(HOME_CSS, b".hero { color: red; }\n")
    rebuild = w.wait_rebuild("app-home")
    assert rebuild.ok and rebuild.changed == (HOME_CSS, MAIN_CSS, MAIN_CSS + ".map") and rebuild.removed == ()
    assert rebuild.reasons == ("public/css/home.css",)


def test_atomic_save_rebuilds_exactly_once(live, example: Path) -> None:
    w = live()
    atomic_write(example / "app-home/public/css/home.css", b".hero { color: blue; }\n")
    w.wait_bytes(HOME_CSS, b".hero { color: blue; }\n")
    # the temp file's create/modify/close and the rename arrive as several events: one rebuild. A
    # later save is the next rebuild, with that file alone (a stray event of the first save would
    # have made a rebuild before it, or joined it)
    first = w.rebuilt("app-home")
    atomic_write(example / "app-home/public/css/base.css", b"body { margin: 0; }\n")
    w.rebuilt("app-home", lambda r: "public/css/base.css" in r.reasons, "the rebuild after base.css", since=first)
    assert [r.reasons for r in w.rebuilds] == [("public/css/home.css",), ("public/css/base.css",)]
    assert first.changed == (HOME_CSS, MAIN_CSS, MAIN_CSS + ".map")


def test_unchanged_services_are_not_rebuilt(live, example: Path) -> None:
    w = live()
    before = w.holder.current
    atomic_write(example / "app-home/public/js/app.js", b"console.log('new');\n")
    w.wait_bytes("app-home/local/js/app.js", b"console.log('new');\n")
    after = w.holder.current
    checkout = [k for k, o in before.outputs.items() if o.service == "app-checkout"]
    assert checkout and all(after.get(k) is before.get(k) for k in checkout)
    assert after.get("app-home/local/js/polyfills.js") is not before.get("app-home/local/js/polyfills.js")
    assert {s.name for s in after.services} == {s.name for s in before.services}


def test_new_file_matching_a_glob_is_served_and_listed(live, example: Path) -> None:
    w = live()
    (example / "app-home/public/js/lib/extra.js").write_text("var extra = 1;\n")
    w.wait_bytes("app-home/local/js/lib/extra.js", b"var extra = 1;\n")
    fragment = w.get(BOTTOM_FRAGMENT).text
    assert fragment.splitlines() == [
        f'<script src="{w.url}/app-home/local/js/lib/dom-ready.js"></script>',
        f'<script src="{w.url}/app-home/local/js/lib/extra.js"></script>',
        f'<script src="{w.url}/app-home/local/js/lib/format.js"></script>',
        f'<script src="{w.url}/app-home/local/js/app.js"></script>',
    ]
    assert "app-home/local/js/lib/extra.js" in w.get("").text  # the index page lists it


def test_file_outside_every_glob_does_not_rebuild(live, example: Path) -> None:
    w = live()
    (example / "app-home/public/js/notes.txt").write_text("not an asset\n")
    (example / "app-home/public/css/home.css").write_text(".after {}\n")  # a real change after it
    w.wait_bytes(HOME_CSS, b".after {}\n")
    # the events arrive in order: a rebuild for notes.txt would be reported before (or with) this one
    w.rebuilt("app-home", lambda r: "public/css/home.css" in r.reasons, "the rebuild of home.css")
    assert w.rebuilds and all(r.reasons == ("public/css/home.css",) for r in w.rebuilds)


def test_deleted_file_leaves_the_set_and_the_fragment(live, example: Path) -> None:
    w = live()
    (example / "app-home/public/js/lib/format.js").unlink()
    w.wait_status("app-home/local/js/lib/format.js", 404)
    assert "format.js" not in w.get(BOTTOM_FRAGMENT).text
    w.rebuilt("app-home", lambda r: r.removed == ("app-home/local/js/lib/format.js",), "format.js removed")


def test_file_deleted_and_recreated(live, example: Path) -> None:
    w = live()
    path = example / "app-home/public/css/base.css"  # named explicitly in the manifest
    path.unlink()
    failed = w.wait_rebuild("app-home")
    assert not failed.ok and "css/base.css: no file matches" in failed.errors[0]
    assert w.get("app-home/local/css/base.css").status_code == 200  # last good output kept
    path.write_text("body { margin: 0; }\n")
    w.wait_bytes("app-home/local/css/base.css", b"body { margin: 0; }\n")
    assert w.wait_rebuild("app-home", 2).ok


def test_manifest_edit_rereads_the_manifest(live, example: Path) -> None:
    w = live()
    manifest_path = example / "app-home/bosco-service.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["assets"]["css"]["print"] = ["css/base.css"]
    atomic_write(manifest_path, json.dumps(manifest).encode())
    fragment = w.wait_status("app-home/local/html/print.css.html", 200).text
    assert fragment == (f'<link rel="stylesheet" href="{w.url}/app-home/local/css/base.css" type="text/css" '
                        'media="all" />\n')


def test_broken_manifest_keeps_last_good_output_then_recovers(live, example: Path) -> None:
    w = live()
    old = w.get(HOME_CSS).content
    manifest_path = example / "app-home/bosco-service.json"
    good = manifest_path.read_text()
    manifest_path.write_text(good.replace('"tags"', '"tags" "oops"', 1))
    message = f"{manifest_path}:5:9: invalid JSON: missing ':' after this key"
    failed = w.rebuilt("app-home", lambda r: r.errors == (message,), "the manifest's error")
    assert w.get(HOME_CSS).content == old
    page = w.get("").text
    assert '<p class="error">bosco-service.json:5:9: invalid JSON: missing &#39;:&#39; after this key</p>' in page
    assert str(example) not in page
    manifest_path.write_text(good)  # in place: on a loaded machine a rebuild may read it half written
    recovered = w.rebuilt("app-home", lambda r: r.ok, "a good rebuild", since=failed)
    assert recovered.recovered and recovered.changed == () and "invalid JSON" not in w.get("").text


def test_minify_mode_rebuilds_a_minified_bundle(live, example: Path) -> None:
    from conftest import build

    w = live(minify=True)
    atomic_write(example / "app-home/public/js/app.js", b"var  answer = 6 * 7 ;\n// gone\n")
    served = w.wait_rebuild("app-home")
    assert served.changed == ("app-home/local/js/bottom.js", "app-home/local/js/bottom.js.map")
    fresh = build(example, minify=True, bundle=True, base_url=w.url)
    body = w.get("app-home/local/js/bottom.js").content
    assert body == fresh.get("app-home/local/js/bottom.js").data
    assert b"var answer=6*7;" in body and b"// gone" not in body


def test_undecodable_css_in_minify_mode_fails_then_recovers(live, example: Path) -> None:
    w = live(minify=True)
    bundle = "app-home/local/css/main.css"
    old = w.get(bundle).content
    path = example / "app-home/public/css/home.css"
    atomic_write(path, b".x { content: '\xff\xfe'; }\n")
    failed = w.wait_rebuild("app-home")
    assert not failed.ok
    assert failed.errors == ("css/main: public/css/home.css: cannot read as UTF-8 (invalid start byte at byte 15)",)
    assert w.get(bundle).content == old
    assert "cannot read as UTF-8" in w.get("").text
    atomic_write(path, b".x { color : red ; }\n")
    until(lambda: b".x{color:red}" in w.get(bundle).content, what="the fixed CSS in the bundle")
    assert "cannot read as UTF-8" not in w.get("").text


def test_watch_roots_skip_node_modules_and_dot_folders(fixture_ws) -> None:
    repo = fixture_ws("watchbuild") / "app-static"
    for folder in ("node_modules/pkg", ".git/objects", ".cache/x", "css/deep"):
        (repo / folder).mkdir(parents=True)
    assert watch_roots(load_service(repo)) == (WatchRoot(repo), WatchRoot(repo / "css"), WatchRoot(repo / "css/deep"))
    assert is_relevant(load_service(repo), repo / "css/deep/new.css")
    assert not is_relevant(load_service(repo), repo / "css/.new.css.swp")


def test_watch_roots_of_missing_folders_watch_the_nearest_existing_one(example: Path) -> None:
    repo = example / "app-reports"  # basePath dist is created by its build command
    assert watch_roots(load_service(repo)) == (WatchRoot(repo),)


class FullInotify(InotifyObserver):
    """The kernel's answer when fs.inotify.max_user_watches is used up (cannot be provoked here
    without changing a machine-wide limit other processes share)."""

    def schedule(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_inotify_limit_falls_back_to_polling(live, example: Path) -> None:
    w = live(observer_class=FullInotify)
    assert w.session.polling
    assert w.problems == [("", INOTIFY_HINT)] and "fs.inotify.max_user_watches" in INOTIFY_HINT
    atomic_write(example / "app-home/public/css/home.css", b".polled {}\n")
    w.wait_bytes(HOME_CSS, b".polled {}\n")


def test_watched_services_defaults_to_the_current_service(example: Path) -> None:
    services, _ = discover_services(example, load_config(example, "local", env={}))
    assert [s.name for s in watched_services(services, None, example / "app-home/public/css")] == ["app-home"]
    assert watched_services(services, None, example) == []
    assert [s.name for s in watched_services(services, "home|checkout", example)] == ["app-home", "app-checkout"]
    with pytest.raises(BoscoError, match=r"-w 'nope' matches none of the 4 services"):
        watched_services(services, "nope", example)


@pytest.mark.parametrize(("pattern", "code", "message"), [
    ("app-(", 2, "Invalid value for --watch: 'app-(' is not a valid regular expression: missing ), unterminated "
     "subpattern at position 4"),
    ("nope", 1, "error: -w 'nope' matches none of the 4 services hint: service names: app-home, app-checkout, "
     "app-reports, service-api"),
    # text a user typed is printed as typed: rich's emoji codes are off (it printed -w 'a🔥')
    ("a:fire:", 1, "error: -w 'a:fire:' matches none of the 4 services"),
])
def test_cdn_watch_bad_regex(example: Path, pattern: str, code: int, message: str) -> None:
    result = CliRunner().invoke(cli, ["cdn", "-W", str(example), "-p", "0", "-w", pattern])
    assert result.exit_code == code  # an invalid regex is a usage error, found before anything is read
    assert message in " ".join(result.output.split())


def test_removed_basepath_folder_is_watched_again(live, example: Path) -> None:
    w = live(watch=("app-checkout",))
    site = example / "app-checkout/site"
    shutil.rmtree(site)
    until(lambda: w.get("asset/favicon.svg").status_code == 404 or w.count("app-checkout") >= 1,
          what="a rebuild after the folder went")
    site.mkdir()
    (site / "favicon.svg").write_text("<svg/>")
    w.wait_bytes("asset/favicon.svg", b"<svg/>")
    (site / "favicon.svg").write_text("<svg></svg>")
    w.wait_bytes("asset/favicon.svg", b"<svg></svg>")


def test_edit_saved_right_after_the_first_answer_is_always_served(live, example: Path) -> None:
    # `bosco cdn -w` serves a quick first pass, then syntax-checks every file while the first
    # requests are answered: a save at that moment must win over the older pass (20 trials)
    app_js = example / "app-home/public/js/app.js"
    for trial in range(20):
        w = live(quick=True, background=True)
        first = w.get("app-home/local/js/app.js")  # waits for the first build like any request
        edit = f"console.log('trial {trial}');\n".encode()
        atomic_write(app_js, edit)
        assert first.status_code == 200 and first.content != edit
        w.wait_bytes("app-home/local/js/app.js", edit)
        w.serving.join(TIMEOUT)
        assert w.get("app-home/local/js/app.js").content == edit  # the second pass did not undo it
        w.close()


def test_a_syntax_check_pass_never_replaces_a_build_from_newer_inputs(example: Path, monkeypatch) -> None:
    # the rebuild lands while the second pass checks the service's older build
    services, warnings = discover_services(example, load_config(example, "local", env={}))
    home = next(s for s in services if s.name == "app-home")
    holder = AssetHolder()
    session = ServedAssetSet(services, [home.path], BuildOptions(), holder, warnings)
    session.build_all(quick=True)
    real_build = pipeline_module.build_service  # the complete pass builds through pipeline.build_in_order

    def rebuild_meanwhile(service, options, *args, **kwargs):
        if service.name == "app-home" and not options.quick and not rebuilt:
            rebuilt.append(True)
            (home.path / "public/js/app.js").write_text("console.log('newer');\n")
            session.rebuild(home.path)
            (home.path / "public/js/app.js").write_text("console.log('older');\n")  # what this pass reads
        return real_build(service, options, *args, **kwargs)

    rebuilt: list[bool] = []

    monkeypatch.setattr(pipeline_module, "build_service", rebuild_meanwhile)
    session.check_all()
    assert rebuilt
    assert holder.current.get("app-home/local/js/app.js").data == b"console.log('newer');\n"


def test_deleted_service_folder_keeps_serving_then_is_picked_up_again(live, example: Path, tmp_path: Path) -> None:
    # a branch switch or an `rm -rf` and re-clone: the watcher must outlive it
    w = live()
    repo = example / "app-home"
    shutil.copytree(repo, tmp_path / "saved")
    shutil.rmtree(repo)
    failed = w.wait_rebuild("app-home")
    assert not failed.ok and "bosco-service.json" in failed.errors[0]
    assert w.get(HOME_CSS).status_code == 200  # the last good build stays served
    assert "bosco-service.json" in w.get("").text
    # the clone comes back whole at once: a rebuild that runs while a copy is half made fails again,
    # rightly, with the same message (under load it did, about 1 run in 4)
    shutil.copytree(tmp_path / "saved", tmp_path / "restored")
    (tmp_path / "restored").rename(repo)
    atomic_write(repo / "public/css/home.css", b".back {}\n")
    w.wait_bytes(HOME_CSS, b".back {}\n")
    w.rebuilt("app-home", lambda r: r.ok, "a good rebuild")
    assert w.session._worker.is_alive() and w.problems == []
    # the failure was told once (the look once more at the folders watched instead found nothing new)
    assert [r.errors for r in w.rebuilds if not r.ok] == [failed.errors]


def test_service_folder_moved_out_of_the_workspace_fails_as_deleting_it_does(live, example: Path,
                                                                              tmp_path: Path) -> None:
    # `mv app-home ~/elsewhere`: inotify reports a watched folder's own move to no one
    w = live()
    repo = example / "app-home"
    repo.rename(tmp_path / "elsewhere")
    failed = w.wait_rebuild("app-home")
    assert not failed.ok and "bosco-service.json" in failed.errors[0]
    assert "bosco-service.json" in w.get("").text
    (tmp_path / "elsewhere").rename(repo)  # and back: picked up again
    w.rebuilt("app-home", lambda r: r.ok, "a good rebuild", since=failed)
    atomic_write(repo / "public/css/home.css", b".back {}\n")
    w.wait_bytes(HOME_CSS, b".back {}\n")
    assert [r.ok for r in w.rebuilds].count(False) == 1


def test_file_renamed_away_and_rewritten_is_never_dropped(live, example: Path) -> None:
    # vim's default save: the original is renamed to a backup, the new file written a moment later
    w = live()
    css = example / "app-home/public/css/home.css"
    css.rename(css.with_name("home.css~"))
    time.sleep(0.3)
    css.write_bytes(b".vim {}\n")
    w.wait_bytes(HOME_CSS, b".vim {}\n")
    time.sleep(0.2)
    assert all(HOME_CSS not in r.removed for r in w.rebuilds)
    assert HOME_CSS in w.get("app-home/local/html/main.css.html").text


def test_a_file_deleted_for_good_leaves_after_the_grace_period(live, example: Path) -> None:
    w = live()
    (example / "app-home/public/js/lib/format.js").unlink()
    w.wait_status("app-home/local/js/lib/format.js", 404)
    w.rebuilt("app-home", lambda r: r.removed == ("app-home/local/js/lib/format.js",), "format.js removed")


def test_recovery_after_a_failed_rebuild_is_reported(live, example: Path, capsys) -> None:
    w = live()
    manifest = example / "app-home/bosco-service.json"
    good = manifest.read_bytes()
    manifest.write_text("{ broken")
    failed = w.rebuilt("app-home", lambda r: not r.ok, "a failed rebuild")
    atomic_write(manifest, good)
    fixed = w.rebuilt("app-home", lambda r: r.ok, "a good rebuild", since=failed)
    assert fixed.recovered
    fields = rebuild_fields(fixed)
    Console().event("rebuild", **fields)
    # the event carries ms rounded to 0.1 (4.46 -> 4.5), and the line rounds that again (4.5 -> "4");
    # the reasons start with the manifest (a rebuild that coalesced the re-watch also names "newly watched folders")
    assert capsys.readouterr().err.startswith(f"app-home: recovered in {fields['ms']:.0f} ms (bosco-service.json")


class LimitedInotify(InotifyObserver):
    """inotify that cannot watch folders named ``lib`` or ``fresh`` (the kernel's answer when a limit is
    used up, which cannot be provoked here without changing a machine-wide limit other processes share)."""

    error = errno.ENOSPC

    def schedule(self, handler, path, **kwargs):
        if Path(path).name in ("lib", "fresh"):
            raise OSError(self.error, "inotify limit reached")
        return super().schedule(handler, path, **kwargs)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EMFILE])
def test_folders_inotify_cannot_watch_are_polled(live, example: Path, error: int) -> None:
    observer = type("Limited", (LimitedInotify,), {"error": error})
    w = live(observer_class=observer)
    lib = example / "app-home/public/js/lib"
    assert w.session.polling == (lib,)
    assert w.problems == [("", INOTIFY_HINT)]
    atomic_write(lib / "format.js", b"var polled = 1;\n")
    w.wait_bytes("app-home/local/js/lib/format.js", b"var polled = 1;\n")
    # a folder created later that inotify cannot watch either: polled too, the worker lives on
    fresh = example / "app-home/public/img/fresh"
    fresh.mkdir()
    until(lambda: fresh in w.session.polling, what="the new folder to be polled")
    (fresh / "new.png").write_bytes(b"png")
    # img/* does not reach into img/fresh; a new file in img/ itself still rebuilds
    atomic_write(example / "app-home/public/img/new.png", b"png")
    w.wait_bytes("app-home/local/img/new.png", b"png")
    assert w.session._worker.is_alive() and w.problems == [("", INOTIFY_HINT)]


def test_symlinked_folder_inside_a_basepath_is_watched(live, example: Path) -> None:
    repo = example / "app-home"
    (repo / "shared").mkdir()
    (repo / "public/js/lib").rename(repo / "shared/lib")
    (repo / "public/js/lib").symlink_to("../../shared/lib", target_is_directory=True)
    (repo / "public/js/loop").symlink_to("..", target_is_directory=True)  # a loop: never followed
    (repo / "public/js/away").symlink_to(str(example), target_is_directory=True)  # leaves the repo
    roots = watch_roots(load_service(repo))
    assert WatchRoot(repo / "public/js/lib", True) in roots
    assert not [r for r in roots if "loop" in r.path.parts or "away" in r.path.parts]
    w = live()
    key = "app-home/local/js/lib/format.js"
    atomic_write(repo / "public/js/lib/format.js", b"var viaLink = 1;\n")
    w.wait_bytes(key, b"var viaLink = 1;\n")
    atomic_write(repo / "shared/lib/format.js", b"var atTarget = 1;\n")
    w.wait_bytes(key, b"var atTarget = 1;\n")
    (repo / "shared/lib/extra.js").write_text("var extra = 1;\n")
    w.wait_bytes("app-home/local/js/lib/extra.js", b"var extra = 1;\n")


def test_a_globstar_that_ends_at_a_symlinked_folder_serves_and_watches_its_files(live, example: Path) -> None:
    # node-glob 7's rule (docs/manifest.md "Globs"): vendor/**/*.js matches the files directly in a
    # linked folder, not in its subfolders; files added or saved behind the link are served
    repo = linked_vendor(example / "app-home")
    w = live()
    assert w.get("app-home/local/vendor/ext/linked.js").content == b"var linked = 2;\n"
    assert w.get("app-home/local/vendor/ext/deep/deep.js").status_code == 404
    (repo / "shared-js/added.js").write_text("var added = 4;\n")
    w.wait_bytes("app-home/local/vendor/ext/added.js", b"var added = 4;\n")
    atomic_write(repo / "shared-js/linked.js", b"var linked = 5;\n")
    w.wait_bytes("app-home/local/vendor/ext/linked.js", b"var linked = 5;\n")
    assert w.get("app-home/local/vendor/ext/deep/deep.js").status_code == 404


@pytest.mark.parametrize("how", ["unlink", "rename"])
def test_a_symlinked_folder_pointed_elsewhere_is_rebuilt_and_watched_at_its_new_target(
        live, example: Path, how: str) -> None:
    # switching a linked folder to another target (``rm link && ln -s``, or ``ln -sfn``, which
    # renames a new link over the old one) serves the new target's files and watches them
    repo = example / "app-home"
    (repo / "shared").mkdir()
    (repo / "public/js/lib").rename(repo / "shared/lib")
    shutil.copytree(repo / "shared/lib", repo / "shared/lib2")
    (repo / "shared/lib2/format.js").write_text("var second = 1;\n")
    link = repo / "public/js/lib"
    link.symlink_to("../../shared/lib", target_is_directory=True)
    w = live()
    key = "app-home/local/js/lib/format.js"
    if how == "unlink":
        link.unlink()
        link.symlink_to("../../shared/lib2", target_is_directory=True)
    else:
        (repo / "public/js/.lib.new").symlink_to("../../shared/lib2", target_is_directory=True)
        (repo / "public/js/.lib.new").rename(link)
    w.wait_bytes(key, b"var second = 1;\n")
    atomic_write(repo / "shared/lib2/format.js", b"var secondEdited = 1;\n")
    w.wait_bytes(key, b"var secondEdited = 1;\n")
    atomic_write(repo / "shared/lib/format.js", b"var firstEdited = 1;\n")  # no longer linked
    atomic_write(repo / "shared/lib2/format.js", b"var secondAgain = 1;\n")
    w.wait_bytes(key, b"var secondAgain = 1;\n")


def _with_imports(repo: Path) -> None:
    """home.css imports partials/vars.css (inside basePath, which imports ../tokens.css) and
    ../../shared/theme.css (outside basePath); no glob names any of them."""
    css = repo / "public/css"
    (css / "partials").mkdir()
    (css / "partials/vars.css").write_text('@import "../tokens.css";\n:root { --v: 1; }\n')
    (css / "tokens.css").write_text(":root { --t: 1; }\n")
    (repo / "shared").mkdir()
    (repo / "shared/theme.css").write_text(".theme { color: red; }\n")
    home = css / "home.css"
    home.write_text('@import "partials/vars.css";\n@import "../../shared/theme.css";\n' + home.read_text())


def test_imported_style_sheets_are_served_unminified_and_watched(live, example: Path) -> None:
    repo = example / "app-home"
    _with_imports(repo)
    w = live()
    assert w.get("app-home/local/css/partials/vars.css").content == (repo / "public/css/partials/vars.css").read_bytes()
    assert w.get("app-home/local/css/tokens.css").content == b":root { --t: 1; }\n"
    assert "shared/theme.css" in w.get("").text  # reaches outside the service's keys: a warning
    atomic_write(repo / "public/css/partials/vars.css", b":root { --v: 2; }\n")
    w.wait_bytes("app-home/local/css/partials/vars.css", b":root { --v: 2; }\n")
    w.wait_status("app-home/local/css/tokens.css", 404)  # no longer imported


def test_editing_an_imported_style_sheet_rebuilds_the_importing_bundle(live, example: Path) -> None:
    repo = example / "app-home"
    _with_imports(repo)
    w = live(minify=True)
    bundle = "app-home/local/css/main.css"
    assert b"--t:1" in w.get(bundle).content and b".theme{color:red}" in w.get(bundle).content
    atomic_write(repo / "public/css/tokens.css", b":root { --t: 42; }\n")
    until(lambda: b"--t:42" in w.get(bundle).content, what="the bundle with the edited import")
    atomic_write(repo / "shared/theme.css", b".theme { color: blue; }\n")
    until(lambda: b".theme{color:blue}" in w.get(bundle).content, what="the bundle with the edited outside import")


@pytest.mark.parametrize("minify", [False, True])
def test_an_imported_style_sheet_created_after_its_import_line_is_picked_up(live, example: Path, minify: bool) -> None:
    # the usual order: write the @import line, then create the file it names (inside the basePath
    # and outside it); the import's target is watched although it is missing
    repo = example / "app-home"
    (repo / "public/css/partials").mkdir()
    (repo / "shared").mkdir()
    w = live(minify=minify)
    home = repo / "public/css/home.css"
    atomic_write(home, b'@import "partials/new.css";\n@import "../../shared/theme.css";\n' + home.read_bytes())
    w.rebuilt("app-home", lambda r: "public/css/home.css" in r.reasons, "the rebuild after the import line")
    # an error (minify), a warning; the look once more at the newly watched shared/ serves a quick
    # pass first, whose page keeps the warnings of the build it replaces (README "Watching")
    until(lambda: "public/css/partials/new.css: does not exist" in w.get("").text,
          what="the missing import on the index page")
    atomic_write(repo / "public/css/partials/new.css", b".new { color: red; }\n")
    atomic_write(repo / "shared/theme.css", b".theme { color: blue; }\n")
    if minify:
        until(lambda: all(b in w.get(MAIN_CSS).content for b in (b".new{color:red}", b".theme{color:blue}")),
              what="the bundle with the imports created after their import lines")
    else:
        w.wait_bytes("app-home/local/css/partials/new.css", b".new { color: red; }\n")
    atomic_write(repo / "public/css/partials/new.css", b".new { color: green; }\n")
    if minify:
        until(lambda: b".new{color:green}" in w.get(MAIN_CSS).content, what="the bundle with the edited import")
    else:
        w.wait_bytes("app-home/local/css/partials/new.css", b".new { color: green; }\n")


def test_a_syntax_error_is_shown_while_the_saved_file_stays_served(live, example: Path) -> None:
    # unminified: the new file is swapped in first and checked after; the served bytes never go back
    w = live()
    atomic_write(example / "app-home/public/js/app.js", b"var = ;\n")
    w.wait_bytes("app-home/local/js/app.js", b"var = ;\n")
    failed = w.wait_rebuild("app-home")
    assert not failed.ok and "public/js/app.js:1:" in failed.errors[0]
    assert w.get("app-home/local/js/app.js").content == b"var = ;\n"


def _exact(map_checker, tmp_path: Path, w, key: str, type_: str, sources: list[str]) -> dict:
    """Fetch the bundle ``key`` and its map over HTTP, check the map names ``sources`` with their
    current text and maps every token of the bundle to the same token in its file; the map."""
    code, source_map = w.get(key), w.get(key + ".map")
    assert (code.status_code, source_map.status_code) == (200, 200)
    assert code.headers["content-type"].startswith("text/css" if type_ == "css" else "text/javascript")
    (tmp_path / "bundle").write_bytes(code.content)
    (tmp_path / "bundle.map").write_bytes(source_map.content)
    parsed = json.loads(source_map.content)
    assert parsed["sources"] == sources
    repo = w.root / sources[0].split("/", 1)[0]
    assert parsed["sourcesContent"] == [(repo / s.split("/", 1)[1]).read_text(encoding="utf-8-sig") for s in sources]
    check = map_checker(tmp_path / "bundle", tmp_path / "bundle.map", type_)
    assert check["checked"] > 100 and check["bad"] == []
    return parsed


def test_unminified_cdn_serves_bundle_keys_as_concatenations_with_exact_maps(live, example: Path, tmp_path: Path,
                                                                             map_checker) -> None:
    # a page wired for the minified fragments (<service>/local/js/<tag>.js) works against plain `bosco cdn`
    from conftest import build

    repo = example / "app-home"
    _with_imports(repo)
    w = live()
    public = repo / "public"
    lib = [(public / f"js/lib/{name}").read_text(encoding="utf-8-sig") for name in ("dom-ready.js", "format.js")]
    app = (public / "js/app.js").read_text()
    # each file ends with a newline, and with a `;` unless it had one (dom-ready.js ends with a line comment)
    expected = lib[0] + "\n;\n" + lib[1] + "\n;\n" + app + "//# sourceMappingURL=bottom.js.map\n"
    assert w.get("app-home/local/js/bottom.js").content == expected.encode()
    js = ["app-home/public/js/lib/dom-ready.js", "app-home/public/js/lib/format.js", "app-home/public/js/app.js"]
    _exact(map_checker, tmp_path, w, "app-home/local/js/bottom.js", "js", js)
    # @imports inlined before the importing file, once, as build does (also the one outside basePath)
    css = w.get("app-home/local/css/main.css").content
    assert css == build(example, bundle=True, base_url=w.url).get("app-home/local/css/main.css").data
    assert css.index(b":root { --t: 1; }") < css.index(b":root { --v: 1; }") < css.index(b".theme { color: red; }")
    assert b"@import" not in css and css.endswith(b"\n/*# sourceMappingURL=main.css.map */\n")
    css_sources = ["app-home/public/css/base.css", "app-home/public/css/tokens.css",
                   "app-home/public/css/partials/vars.css", "app-home/shared/theme.css", "app-home/public/css/home.css"]
    _exact(map_checker, tmp_path, w, "app-home/local/css/main.css", "css", css_sources)
    # the fragments still list the files one by one
    assert w.get("app-home/local/html/main.css.html").text.count("<link") == 2
    # saved: the concatenation and its map follow
    atomic_write(public / "js/app.js", b"var edited = 42;\n")
    w.wait_bytes("app-home/local/js/bottom.js", (lib[0] + "\n;\n" + lib[1] + "\n;\nvar edited = 42;\n"
                                                 "//# sourceMappingURL=bottom.js.map\n").encode())
    # the map of the first pass maps lines; the complete pass, reported as the rebuild, every token
    w.rebuilt("app-home", lambda r: r.reasons == ("public/js/app.js",))
    _exact(map_checker, tmp_path, w, "app-home/local/js/bottom.js", "js", js)
    atomic_write(public / "css/tokens.css", b":root { --t: 42; }\n")  # an imported file
    until(lambda: b":root { --t: 42; }" in w.get("app-home/local/css/main.css").content, what="the edited import")
    w.rebuilt("app-home", lambda r: r.reasons == ("public/css/tokens.css",))
    _exact(map_checker, tmp_path, w, "app-home/local/css/main.css", "css", css_sources)


def test_a_concatenation_asked_for_between_the_passes_waits_for_the_complete_one(live, example: Path) -> None:
    # the first pass of an unminified rebuild serves the saved file at once and leaves the
    # concatenations to the complete pass: asked for meanwhile, they answer once built, never 404
    # and never the bytes from before the save
    from concurrent.futures import ThreadPoolExecutor

    from conftest import build

    w = live(watch=())  # the test runs both passes itself
    repo = example / "app-home"
    keys = ["app-home/local/js/bottom.js", "app-home/local/js/bottom.js.map"]
    assert [w.get(k).status_code for k in keys] == [200, 200]
    (repo / "public/js/app.js").write_text("var edited = 42;\n")
    done = w.session._first_pass(repo, ["public/js/app.js"])
    assert w.get("app-home/local/js/app.js").content == b"var edited = 42;\n"
    assert set(keys) <= w.holder.pending and not any(w.holder.current.get(k) for k in keys)
    with ThreadPoolExecutor(len(keys)) as pool:
        answers = [pool.submit(w.http.get, f"/{k}") for k in keys]
        w.session._second_pass(done)
        answers = [a.result() for a in answers]
    cold = build(example, bundle=True, base_url=w.url)
    assert [(a.status_code, a.content) for a in answers] == [(200, cold.get(k).data) for k in keys]
    assert b"var edited = 42;" in answers[0].content and not w.holder.pending


def quick_pass_of_a_save(w, repo: Path):
    """Save ``public/js/app.js`` of ``repo`` atomically and run the rebuild's first (quick) pass, as
    the watcher would; returns what ``_second_pass`` takes."""
    atomic_write(repo / "public/js/app.js", b"var x;\n")
    return w.session._first_pass(repo, ["public/js/app.js"])


def test_a_complete_pass_finished_while_a_newer_first_pass_builds_is_not_served(live, example: Path,
                                                                            tmp_path: Path) -> None:
    # a complete pass reads the files again: finished while the next save's first pass was building,
    # it was served and announced with base.css read just after its deletion (a failure told once
    # more, with other figures, and bytes no first pass served). The newer pass here is held in its
    # build.command (run because base.css, a declared asset, is missing) until the test lets it go
    import sys
    from concurrent.futures import ThreadPoolExecutor

    started, go = tmp_path / "started", tmp_path / "go"
    script = (f"import pathlib, time; pathlib.Path({str(started)!r}).touch()\n"
              f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)")
    repo = example / "app-home"
    manifest = json.loads((repo / "bosco-service.json").read_text())
    manifest["build"] = {"command": [sys.executable, "-c", script]}
    (repo / "bosco-service.json").write_text(json.dumps(manifest))
    w = live(watch=())  # the test runs the passes itself
    assert not started.exists()  # every declared asset exists: the command did not run
    done = quick_pass_of_a_save(w, repo)
    quick = w.session._served[repo]
    (repo / "public/css/base.css").unlink()
    with ThreadPoolExecutor(1) as pool:
        try:
            newer = pool.submit(w.session._first_pass, repo, ["public/css/base.css"])
            until(started.exists, what="the newer first pass to run its build.command")
            assert w.session._second_pass(done) is None
            assert w.session._served[repo] is quick and w.rebuilds == []
            assert repo not in w.session._pending  # the newer pass makes the rebuild again
            assert w.get("app-home/local/css/base.css").status_code == 200
        finally:
            go.touch()
        newer = newer.result()
    assert newer is not None
    rebuild = w.session._second_pass(newer)
    assert rebuild is not None and w.rebuilds == [rebuild]
    assert rebuild.errors == (f"css/main: css/base.css: no file matches under {repo / 'public'}",)
    assert rebuild.reasons == ("public/css/base.css", "public/js/app.js")


def test_a_complete_pass_overtaken_while_it_builds_is_not_served(live, example: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    # the next save's first pass begins while the complete pass builds: the files the quick pass
    # read are unchanged (a manifest edit adds a bundle), yet the complete pass must give way. The
    # newer pass is held in its build.command (run for the new bundle's missing files)
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from bosco import watch as watch_module

    started, go = tmp_path / "started", tmp_path / "go"
    script = (f"import pathlib, time; pathlib.Path({str(started)!r}).touch()\n"
              f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)")
    repo = example / "app-home"
    path = repo / "bosco-service.json"
    manifest = json.loads(path.read_text())
    manifest["build"] = {"command": [sys.executable, "-c", script]}
    path.write_text(json.dumps(manifest))
    w = live(watch=())  # the test runs the passes itself
    done = quick_pass_of_a_save(w, repo)
    quick = w.session._served[repo]
    real_build = watch_module.build_service
    newer = []

    def overtaken(service, options, *args, **kwargs):
        if not options.quick and not newer:  # the complete pass of the first save
            manifest["assets"]["js"]["extra"] = ["js/missing/*.js"]
            path.write_text(json.dumps(manifest))
            newer.append(pool.submit(w.session._first_pass, repo, ["bosco-service.json"]))
            until(started.exists, what="the newer first pass to run its build.command")
        return real_build(service, options, *args, **kwargs)

    monkeypatch.setattr(watch_module, "build_service", overtaken)
    with ThreadPoolExecutor(1) as pool:
        try:
            assert w.session._second_pass(done) is None
            assert w.session._served[repo] is quick and w.rebuilds == []
            assert repo not in w.session._pending  # the newer pass makes the rebuild again
        finally:
            go.touch()
        first = newer[0].result()
    rebuild = w.session._second_pass(first)
    assert rebuild is not None and w.rebuilds == [rebuild]
    assert rebuild.errors == (f"js/extra: js/missing/*.js: no file matches under {repo / 'public'}",)
    assert rebuild.reasons == ("bosco-service.json", "public/js/app.js")


def test_a_file_changed_between_the_passes_makes_the_rebuild_again(live, example: Path) -> None:
    # the complete pass reads the files again: base.css deleted after the quick pass served the save
    # of app.js (its event not come yet, as under load) is no complete build of what was served;
    # the rebuild is asked for again instead of serving it
    w = live(watch=())  # the test runs the passes itself
    repo = example / "app-home"
    done = quick_pass_of_a_save(w, repo)
    quick = w.session._served[repo]
    (repo / "public/css/base.css").unlink()
    assert w.session._second_pass(done) is None
    assert w.session._served[repo] is quick and w.rebuilds == []
    assert w.session._pending[repo][1] == {"public/js/app.js"}
    rebuild = w.session.rebuild(repo, ["public/css/base.css"])
    assert rebuild is not None and w.rebuilds == [rebuild]
    assert rebuild.errors == (f"css/main: css/base.css: no file matches under {repo / 'public'}",)
    assert rebuild.reasons == ("public/css/base.css", "public/js/app.js")


def test_the_assets_counted_are_the_same_while_a_quick_pass_is_served(live, example: Path) -> None:
    # bosco cdn's "serving N assets" counted the served set: fewer while a rebuild's quick pass,
    # whose concatenations are pending, was served (a save during the first build)
    w = live(watch=())  # the test runs the passes itself
    repo = example / "app-home"
    complete = w.holder.asset_keys()
    assert "app-home/local/js/bottom.js" in complete and "index.html" not in complete
    done = quick_pass_of_a_save(w, repo)
    assert sum(1 for o in w.holder.current.outputs.values() if o.kind != "page") < len(complete)
    assert w.holder.asset_keys() == complete
    w.session._second_pass(done)
    assert w.holder.asset_keys() == complete and not w.holder.pending


@pytest.mark.parametrize("where", ["unlisted, beside the file", "outside the basePath"])
def test_editing_the_map_a_sourcemappingurl_names_rebuilds_its_bundle(live, example: Path, where: str) -> None:
    # an alreadyMinified file's map is the target of its own sourceMappingURL comment, listed in the
    # manifest or not, inside the basePath or anywhere in the repository (README "Exact source
    # maps"): the bundle's composed map is made from it, so saving it must rebuild that bundle
    repo = example / "app-checkout"
    manifest = json.loads((repo / "bosco-service.json").read_text())
    manifest["files"]["vendor-min"]["js"] = ["tiny.min.js"]  # the comment alone names the map
    (repo / "bosco-service.json").write_text(json.dumps(manifest))
    map_path = repo / "vendor/tiny.min.js.map"
    if where == "outside the basePath":
        (repo / "maps").mkdir()
        map_path = map_path.rename(repo / "maps/tiny.min.js.map")
        script = repo / "vendor/tiny.min.js"
        script.write_text(script.read_text().replace("sourceMappingURL=tiny.min.js.map",
                                                     "sourceMappingURL=../maps/tiny.min.js.map"))
    w = live(watch=("app-checkout",), minify=True)
    key = "app-checkout/local/js/vendor-min.js.map"
    folder = map_path.parent.relative_to(repo).as_posix()
    assert f'"app-checkout/{folder}/tiny.js"'.encode() in w.get(key).content
    atomic_write(map_path, map_path.read_bytes().replace(b'"sources":["tiny.js"]', b'"sources":["tiny-src.js"]'))
    until(lambda: f'"app-checkout/{folder}/tiny-src.js"'.encode() in w.get(key).content,
          what="the composed map made from the edited map")


def test_editing_the_target_of_a_symlinked_file_rebuilds_its_service(live, example: Path) -> None:
    # a file of a glob may be a symbolic link to a file elsewhere in the repository (README "Globs":
    # only links that leave the repository are refused); saving its target changes what is served
    repo = example / "app-home"
    (repo / "shared").mkdir()
    atomic_write(repo / "shared/linked.js", b"var linked = 1;\n")
    (repo / "public/js/lib/linked.js").symlink_to("../../../shared/linked.js")
    w = live()
    assert b"var linked = 1;" in w.get("app-home/local/js/lib/linked.js").content
    atomic_write(repo / "shared/linked.js", b"var linked = 2;\n")
    until(lambda: b"var linked = 2;" in w.get("app-home/local/js/lib/linked.js").content,
          what="the edited target of the symlinked file")


def test_a_quick_pass_keeps_the_warnings_only_the_complete_pass_finds(live, example: Path) -> None:
    # unminified, a quick pass has no concatenations, so it cannot see an @import of a missing file:
    # the page kept showing that warning only until the next save's quick pass (a look once more
    # at newly watched folders follows an import line at once), then lost it until its complete pass
    w = live(watch=())  # the test runs the passes itself
    repo = example / "app-home"
    home = repo / "public/css/home.css"
    home.write_bytes(b'@import "partials/new.css";\n' + home.read_bytes())
    w.session.rebuild(repo, ["public/css/home.css"])
    assert "public/css/partials/new.css: does not exist" in w.get("index.html").text
    done = w.session._first_pass(repo, ["public/css/home.css"])
    assert "public/css/partials/new.css: does not exist" in w.get("index.html").text
    w.session._second_pass(done)
    assert "public/css/partials/new.css: does not exist" in w.get("index.html").text
    (repo / "public/css/partials").mkdir()
    (repo / "public/css/partials/new.css").write_bytes(b".new { color: red; }\n")
    w.session.rebuild(repo, ["public/css/partials/new.css"])
    assert "does not exist" not in w.get("index.html").text
