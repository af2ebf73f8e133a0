// Token identity and map exactness of the JS bundles bosco wrote (bosco build --out DIR).
// Usage: NODE_PATH=<folder with @babel/parser and source-map> node bench/check_bundles.js DIR
// For every <DIR>/**/js/*.js with a .map: the bundle's tokens (@babel/parser, classic script,
// comments excluded) must be the tokens of its sources (the map's sourcesContent, in order) with at
// most one `;` added after each file; every identifier, number and string token (template chunks
// excepted: a template maps at its backtick) must map (source-map package) to the same text in its source. Prints one line per bundle and the totals as JSON.
const fs = require('fs');
const path = require('path');
const { parse } = require('@babel/parser');
const { SourceMapConsumer } = require('source-map');

function tokens(code) {
  const ast = parse(code, { sourceType: 'script', tokens: true, errorRecovery: true, allowReturnOutsideFunction: true });
  return ast.tokens.filter((t) => !/^Comment/.test(t.type) && t.type.label !== 'eof')
    .map((t) => ({ text: code.slice(t.start, t.end), line: t.loc.start.line, column: t.loc.start.column,
      template: t.type.label === 'template' }));
}

function bundles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return bundles(p);
    return p.endsWith('.js') && path.basename(path.dirname(p)) === 'js' && fs.existsSync(p + '.map') ? [p] : [];
  });
}

(async () => {
  const total = { bundles: 0, tokens: 0, identical: 0, mapped: 0, exact: 0 };
  for (const file of bundles(process.argv[2]).sort()) {
    const code = fs.readFileSync(file, 'utf8');
    const map = JSON.parse(fs.readFileSync(file + '.map', 'utf8'));
    const ours = tokens(code);
    let i = 0;
    let same = true;
    const sources = map.sourcesContent.map(tokens);
    sources.forEach((theirs, k) => {
      for (const t of theirs) {
        if (!same) return;
        if (i < ours.length && ours[i].text === t.text) i++;
        else same = false;
      }
      // a `;` bosco added after the file (not the next file's own leading `;`)
      const next = sources[k + 1] && sources[k + 1][0];
      if (same && i < ours.length && ours[i].text === ';' && !(next && next.text === ';' && !(ours[i + 1] && ours[i + 1].text === ';'))) i++;
    });
    same = same && i === ours.length;
    const consumer = await new SourceMapConsumer(map);
    const lines = Object.fromEntries(map.sources.map((s, k) => [s, (map.sourcesContent[k] || '').split('\n')]));
    let mapped = 0;
    let exact = 0;
    for (const t of ours) {
      // a template literal maps as one token at its backtick, its text chunks are inside it
      if (t.template || !/^([A-Za-z_$][\w$]*|\d[\w.]*|["'][\s\S]*)$/.test(t.text)) continue;
      mapped++;
      const p = consumer.originalPositionFor({ line: t.line, column: t.column });
      if (p.source !== null && (lines[p.source][p.line - 1] || '').slice(p.column).startsWith(t.text.split('\n')[0])) exact++;
    }
    consumer.destroy();
    total.bundles++;
    total.tokens += ours.length;
    total.identical += same ? 1 : 0;
    total.mapped += mapped;
    total.exact += exact;
    console.log(`${path.relative(process.argv[2], file)}: ${ours.length} tokens, ${same ? 'identical to its sources' : 'DIFFERENT at token ' + i}, ${exact}/${mapped} mapped exactly`);
  }
  console.log(JSON.stringify(total));
})();
