"""A file above ``syntax.LARGE_FILE`` characters is never parsed or minified (memory stays
proportional to its size): shipped as it is, mapped line by line, with a warning naming it. The
limit is lowered here so the test files stay small; README "Bundles you can trust" gives the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trustkit import build, output, service

from bosco import syntax
from bosco.sourcemap import decode_mappings

BIG = "".join(f"var value{n} = {n}; // comment {n}\n" for n in range(100)) + "if (\n"  # a syntax error at the end
SMALL = "var small = 1; // gone when minified\n"


@pytest.fixture
def low_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(syntax, "LARGE_FILE", 2000)
    return 2000


def test_a_large_file_is_shipped_as_it_is_and_mapped_by_line(tmp_path: Path, low_limit: int):
    assert len(BIG) > low_limit > len(SMALL)
    repo = service(tmp_path, "svc", {"js/big.js": BIG, "js/small.js": SMALL},
                   {"js": {"app": ["js/big.js", "js/small.js"]}})
    result = build(repo)
    [report] = result.bundles
    assert report.errors == ()  # not parsed, so its syntax error is not seen
    assert report.warnings == (f"js/big.js: {len(BIG):,} characters, more than the 2,000 bosco parses and minifies "
                               "in one file: shipped as it is (not syntax-checked, mapped line by line)",)
    code = output(result, "svc/default/js/app.js").decode()
    assert code.startswith(BIG + ";\nvar small=1;")
    source_map = json.loads(output(result, "svc/default/js/app.js.map"))
    assert source_map["sources"] == ["svc/js/big.js", "svc/js/small.js"]
    lines = decode_mappings(source_map["mappings"])
    assert [lines[n] for n in (0, 1, 100)] == [[(0, 0, 0, 0)], [(0, 0, 1, 0)], [(0, 0, 100, 0)]]


def test_a_large_file_keeps_its_last_line_map_comment_out_of_the_bundle(tmp_path: Path, low_limit: int):
    text = BIG.replace("if (\n", "") + "//# sourceMappingURL=big.js.map\n"
    repo = service(tmp_path, "svc", {"js/big.js": text}, {"js": {"app": ["js/big.js"]}})
    code = output(build(repo), "svc/default/js/app.js").decode()
    assert code.count("sourceMappingURL") == 1 and code.endswith("//# sourceMappingURL=app.js.map\n")
