/* app-reports: sortable sales table and page wiring. */

const REPORT_ROWS = [
  { region: 'North', month: '2024-01', orders: 120, total: 5321.5 },
  { region: 'South', month: '2024-01', orders: 98, total: 4410 },
  { region: 'North', month: '2024-02', orders: 131, total: 6012.25 },
  { region: 'West', month: '2024-02', orders: 45, total: 1999.9 },
];

const sortRows = (rows, key, dir = 1) =>
  [...rows].sort((a, b) => (a[key] > b[key] ? dir : a[key] < b[key] ? -dir : 0));

const renderTable = (rows, { caption = '', currency = 'EUR' } = {}) => {
  const money = new Intl.NumberFormat('en-GB', { style: 'currency', currency });
  const head = ['region', 'month', 'orders', 'total'].map((k) => `<th data-key="${k}">${k}</th>`).join('');
  const body = rows
    .map((r) => `<tr><td>${r.region}</td><td>${r.month}</td><td>${r.orders}</td><td>${money.format(r.total)}</td></tr>`)
    .join('\n');
  return `<table class="report">${caption ? `<caption>${caption}${rows.length ? `, ${rows.length} rows` : ''}</caption>` : ''}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
};

if (typeof document !== 'undefined') {
  const mount = document.querySelector('[data-report]');
  if (mount) {
    let dir = 1;
    const draw = (key = 'month') => {
      mount.innerHTML = renderTable(sortRows(REPORT_ROWS, key, dir), { caption: 'Sales by month' });
      const { BarChart, reportsSeries } = globalThis.ReportsChart ?? {};
      if (BarChart) mount.insertAdjacentHTML('beforeend', new BarChart().render(reportsSeries(REPORT_ROWS, 'region')));
    };
    mount.addEventListener('click', (e) => {
      const key = e.target.closest('th')?.dataset.key;
      if (key) { dir = -dir; draw(key); }
    });
    draw();
  }
}

globalThis.ReportsTable = { REPORT_ROWS, sortRows, renderTable };
globalThis.BOSCO_EXAMPLE = (globalThis.BOSCO_EXAMPLE || []).concat('app-reports/src/table.js');
