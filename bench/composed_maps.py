#!/usr/bin/env python3
"""How exactly bosco composes the map of an already-minified CSS file it rewrites.

    python3 bench/composed_maps.py [--css .../foundation-sites/dist/css/foundation.min.css]

Bundles the file (with its own ``.map`` next to it) as an ``alreadyMinified`` section from a
sub-folder, so bosco moves its ``@charset`` and rebases its ``url()``s, then runs
the ``source-map`` npm package on the library's own file and map and on bosco's bundle and map:
every identifier, number and string token of both files is looked up, the two token sequences are
aligned (difflib; bosco only moves ``@charset`` and rewrites URLs) and each token of bosco's
bundle must map to the same original position as the same token of the library's file. Needs node
and the ``source-map`` package the tests install (``$TMPDIR/bosco-test-source-map-*``).
"""

from __future__ import annotations

import argparse
import difflib
import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = "/tmp/bosco-bench/libs/node_modules/foundation-sites/dist/css/foundation.min.css"


LOOKUP = r"""
const fs = require('fs');
const { SourceMapConsumer } = require('source-map');
const [codePath, mapPath] = process.argv.slice(1);
const code = fs.readFileSync(codePath, 'utf8');
(async () => {
  const consumer = await new SourceMapConsumer(JSON.parse(fs.readFileSync(mapPath, 'utf8')));
  const out = [];
  code.split('\n').forEach((text, i) => {
    if (text.includes('sourceMappingURL=')) return;
    const re = new RegExp(String.raw`(\/\*[\s\S]*?\*\/)|("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|` +
                          String.raw`(#[\w-]+|-?[A-Za-z_][\w-]*|\d*\.?\d+[A-Za-z%]*)`, 'g');
    let m;
    while ((m = re.exec(text))) {
      if (m[1]) continue;
      const p = consumer.originalPositionFor({ line: i + 1, column: m.index });
      out.push([m[2] || m[3], p.source, p.line, p.column]);
    }
  });
  console.log(JSON.stringify(out));
})();
"""


def lookup(node_path: str, code: Path, source_map: Path) -> list[list]:
    """``[token, source, line, column]`` of every token of ``code`` through ``source_map``."""
    out = subprocess.run(["node", "-e", LOOKUP, "--", str(code), str(source_map)], check=True,
                         capture_output=True, text=True, env={**os.environ, "NODE_PATH": node_path}).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--css", default=DEFAULT)
    args = parser.parse_args()
    css = Path(args.css)
    modules = sorted(glob.glob(os.path.join(tempfile.gettempdir(), "bosco-test-source-map-*", "node_modules")))
    if not modules:
        raise SystemExit("run the map tests once first (they install the source-map package)")
    from bosco.pipeline import BuildOptions, build_service
    from bosco.workspace import load_service

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "svc"
        folder = repo / "public" / "vendor" / "css"
        folder.mkdir(parents=True)
        shutil.copy(css, folder / css.name)
        shutil.copy(css.with_name(css.name + ".map"), folder / (css.name + ".map"))
        (repo / "bosco-service.json").write_text(json.dumps({"service": {"name": "svc"}, "assets": {
            "basePath": "public", "alreadyMinified": True,
            "css": {"main": [f"vendor/css/{css.name}", f"vendor/css/{css.name}.map"]}}}))
        result = build_service(load_service(repo), BuildOptions(build="1", bundle=True, minify=True))
        out = Path(tmp) / "out"
        for o in result.outputs:
            (out / o.key).parent.mkdir(parents=True, exist_ok=True)
            (out / o.key).write_bytes(o.data)
        library = lookup(modules[-1], folder / css.name, folder / (css.name + ".map"))
        bosco = lookup(modules[-1], out / "svc/1/css/main.css", out / "svc/1/css/main.css.map")
    matcher = difflib.SequenceMatcher(None, [t[0] for t in library], [t[0] for t in bosco], autojunk=False)
    pairs = [(library[block.a + k], bosco[block.b + k]) for block in matcher.get_matching_blocks()
             for k in range(block.size)]
    # the library's sources are relative to its map, bosco's are <service>/<repo path>: compare the file name
    same = sum(1 for lib, ours in pairs if lib[2:] == ours[2:] and (lib[1] or "").split("/")[-1] ==
               (ours[1] or "").split("/")[-1])
    print(f"{css.name}: {len(library)} tokens in the library's file, {len(bosco)} in bosco's bundle, "
          f"{len(pairs)} aligned; {same} of {len(pairs)} ({100 * same / len(pairs):.1f}%) map like the library's map")


if __name__ == "__main__":
    main()
