// Time-series charts with uPlot (canvas; its styles are set through the
// CSSOM, which the CSP allows, never through inline style attributes).
import uPlot from '/ui/vendor/uPlot.esm.js';
import { h, fmtCount } from './dom.js';

const COLORS = { requests: '#1f5fbf', denials: '#c0392b', alerts: '#b7791f' };
const charts = new Set();

window.addEventListener('resize', () => {
  for (const c of charts) {
    if (!c.root.isConnected) { charts.delete(c); c.destroy(); continue; }
    c.setSize({ width: c.root.parentElement.clientWidth, height: 240 });
  }
});

/**
 * A figure with a uPlot line chart of `series` (name → counts) over `t`
 * (bucket starts, epoch ms). `data-points` holds the number of points drawn,
 * `data-series` the series names, for people and tests alike.
 */
export function timeChart(id, title, t, series) {
  const plot = h('div', { class: 'chart-plot', id: `${id}-plot` });
  const totals = Object.entries(series).map(([name, ys]) => `${fmtCount(ys.reduce((a, b) => a + b, 0))} ${name}`);
  const fig = h('figure', { class: 'chart', id, 'aria-labelledby': `${id}-title`, 'aria-describedby': `${id}-summary` },
    h('figcaption', { id: `${id}-title` }, title),
    plot,
    h('p', { class: 'chart-summary muted small', id: `${id}-summary` }, `${totals.join(', ')} in ${t.length} buckets.`));
  // Drawn once the figure is in the document (uPlot needs its width).
  fig.draw = () => {
    const xs = t.map((ms) => ms / 1000);
    const names = Object.keys(series);
    const opts = {
      width: Math.max(300, plot.clientWidth || fig.parentElement?.clientWidth || 600),
      // Axis and legend times in UTC, like every other time on these pages.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      height: 240,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { values: (_u, ticks) => ticks.map((v) => (Number.isInteger(v) ? fmtCount(v) : '')) }],
      series: [{}, ...names.map((n) => ({ label: n, stroke: COLORS[n] ?? '#555', width: 2, points: { show: t.length <= 120 } }))],
    };
    const u = new uPlot(opts, [xs, ...names.map((n) => series[n])], plot);
    charts.add(u);
    fig.dataset.points = String(u.data[0].length);
    fig.dataset.series = names.join(',');
    return u;
  };
  return fig;
}
