/* app-reports: tiny SVG bar chart, no dependencies. */

class BarChart {
  constructor({ width = 480, height = 160, gap = 4 } = {}) {
    Object.assign(this, { width, height, gap });
  }

  render(series, { label = (d) => d.label, value = (d) => d.value } = {}) {
    const max = Math.max(1, ...series.map(value));
    const bw = (this.width - this.gap * (series.length - 1)) / Math.max(series.length, 1);
    const bars = series.map((d, i) => {
      const h = Math.round((value(d) / max) * (this.height - 20));
      const x = Math.round(i * (bw + this.gap));
      return `<rect x="${x}" y="${this.height - 20 - h}" width="${Math.floor(bw)}" height="${h}"><title>${label(d)}: ${value(d)}</title></rect>`;
    });
    return `<svg class="chart" viewBox="0 0 ${this.width} ${this.height}" role="img">${bars.join('')}</svg>`;
  }
}

const reportsSeries = (rows, key) =>
  Object.entries(
    rows.reduce((acc, row) => ({ ...acc, [row[key]]: (acc[row[key]] ?? 0) + row.total }), {}),
  ).map(([label, value]) => ({ label, value }));

globalThis.ReportsChart = { BarChart, reportsSeries };
globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-reports/src/chart.js');
