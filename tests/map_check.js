// For every identifier, number and string token of a generated file (strings, templates and
// comments skipped as units), ask the `source-map` consumer for the original position and check
// the original source holds the same token there. Prints {checked, bad, badCount} as JSON.
// Usage (see conftest.check_map): node -e "require('map_check.js')" -- CODE MAP js|css
const fs = require('fs');
const { SourceMapConsumer } = require('source-map');

const [codePath, mapPath, type] = process.argv.slice(1);
const code = fs.readFileSync(codePath, 'utf8');
const map = JSON.parse(fs.readFileSync(mapPath, 'utf8'));
const skipped = type === 'css'
  ? String.raw`(\/\*[\s\S]*?\*\/)`
  : String.raw`(\/\/[^\n]*|\/\*[\s\S]*?\*\/|` + '`' + String.raw`(?:\\[\s\S]|[^\\` + '`' + String.raw`])*` + '`)';
const strings = String.raw`("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')`;
const words = type === 'css'
  ? String.raw`(#[\w-]+|-?[A-Za-z_][\w-]*|\d*\.?\d+[A-Za-z%]*)`
  : String.raw`([A-Za-z_$][\w$]*|\d+(?:\.\d+)?)`;

(async () => {
  const consumer = await new SourceMapConsumer(map);
  let checked = 0;
  const bad = [];
  code.split('\n').forEach((text, i) => {
    if (text.includes('sourceMappingURL=')) return;
    const re = new RegExp(`${skipped}|${strings}|${words}`, 'g');
    let m;
    while ((m = re.exec(text))) {
      if (m[1]) continue;
      const token = m[2] || m[3];
      const pos = consumer.originalPositionFor({ line: i + 1, column: m.index });
      const content = pos.source === null ? null : consumer.sourceContentFor(pos.source, true);
      const original = content === null ? '' : content.split('\n')[pos.line - 1] || '';
      checked++;
      if (!original.slice(pos.column).startsWith(token)) {
        bad.push({ token, line: i + 1, column: m.index, source: pos.source, at: [pos.line, pos.column],
                   found: original.slice(pos.column, pos.column + 20) });
      }
    }
  });
  consumer.destroy();
  console.log(JSON.stringify({ checked, bad: bad.slice(0, 100), badCount: bad.length }));
})();
