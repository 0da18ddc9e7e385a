// Celeriac dashboard: small DOM helpers shared by the pages. Everything is built with
// createElement and textContent (never innerHTML), so task data can never inject markup.
// Also the throughput chart (inline SVG) and the progress bar.

const SVG = 'http://www.w3.org/2000/svg';

/** h('a', {href: '#/'}, 'text', child...) -> an element; attributes starting with `on` are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const stateBadge = (state) => h('span', { class: `state ${state}`, 'data-state': state }, state);

export function time(value) {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function age(secs) {
  if (secs === null || secs === undefined) return '—';
  if (secs < 60) return `${secs.toFixed(1)} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min`;
  return `${(secs / 3600).toFixed(1)} h`;
}

export const json = (value) => h('pre', {}, JSON.stringify(value, null, 2));

/** A task's tags (`options.tags`) as `name:value`, space-separated (the search's form); '' without. */
export const tagsText = (task) => Object.entries(task.options?.tags || {}).map(([k, v]) => `${k}:${v}`).join(' ');

/** A table: columns are [heading, (row) => cell, numeric?]; rows get `rowAttrs(row)`. */
export function table(columns, rows, rowAttrs = () => ({}), empty = 'Nothing here.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([title, , num]) => h('th', { class: num ? 'num' : '' }, title)))),
    h('tbody', {}, rows.map((row) => h('tr', rowAttrs(row),
      columns.map(([title, cell, num]) => h('td', { class: num ? 'num' : '', 'data-field': title.toLowerCase() }, cell(row)))))));
}

export const taskLink = (id) => h('a', { href: `#/task/${encodeURIComponent(id)}` }, h('code', {}, id));

/** Tasks as a table: id, task, state, created, attempt. */
export const taskTable = (tasks, extra = []) => table([
  ['Id', (t) => taskLink(t.task_id)],
  ['Task', (t) => t.task],
  ['Queue', (t) => h('a', { href: `#/queue/${encodeURIComponent(t.queue)}` }, t.queue)],
  ['State', (t) => stateBadge(t.state)],
  ['Created', (t) => time(t.created_at)],
  ['Attempt', (t) => t.attempt, true],
  ...extra,
], tasks, (t) => ({ 'data-task-id': t.task_id }), 'No tasks.');

/** A progress bar for `{current, total, message}` (or null: empty). */
export function progressBar(progress) {
  const bar = h('div', {});
  const outer = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, bar);
  const label = h('div', { class: 'progress-label' }, 'No progress reported yet.');
  const wrap = h('div', { class: 'progress-wrap' }, outer, label);
  wrap.update = (p, done) => {
    let pct = p && p.total ? Math.min(100, Math.round((100 * p.current) / p.total)) : 0;
    if (done) pct = 100;
    bar.style.width = `${pct}%`;
    outer.setAttribute('aria-valuenow', String(pct));
    label.textContent = p ? `${pct}% — ${p.current} of ${p.total}${p.message ? ` — ${p.message}` : ''}` : (done ? '100% — finished' : 'No progress reported yet.');
  };
  wrap.update(progress, false);
  return wrap;
}

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Stacked bars of succeeded and failed runs per minute: `[{minute, succeeded, failed}]`. */
export function throughputChart(minutes) {
  const width = 1100, height = 160, pad = 24;
  const max = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed));
  const step = (width - pad) / Math.max(1, minutes.length);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'xMinYMid meet', role: 'img', 'aria-label': 'Runs per minute, last hour' });
  chart.append(svg('line', { class: 'axis', x1: pad, y1: height - pad, x2: width, y2: height - pad }));
  chart.append(svg('text', { x: 0, y: 10 }, String(max)));
  chart.append(svg('text', { x: 0, y: height - pad }, '0'));
  minutes.forEach((m, i) => {
    const x = pad + i * step + 1;
    const ok = ((height - pad - 12) * m.succeeded) / max;
    const bad = ((height - pad - 12) * m.failed) / max;
    const title = `${new Date(m.minute).toLocaleTimeString()}: ${m.succeeded} succeeded, ${m.failed} failed`;
    const ok_rect = svg('rect', { class: 'ok', x, y: height - pad - ok, width: Math.max(1, step - 2), height: ok });
    ok_rect.append(svg('title', {}, title));
    const bad_rect = svg('rect', { class: 'bad', x, y: height - pad - ok - bad, width: Math.max(1, step - 2), height: bad });
    bad_rect.append(svg('title', {}, title));
    if (ok > 0) chart.append(ok_rect);
    if (bad > 0) chart.append(bad_rect);
  });
  if (minutes.length) {
    chart.append(svg('text', { x: pad, y: height - 6 }, new Date(minutes[0].minute).toLocaleTimeString()));
    chart.append(svg('text', { x: width - 60, y: height - 6 }, 'now'));
  }
  return h('div', { class: 'chart' }, chart, h('div', { class: 'legend' }, 'Runs per minute over the last hour: green succeeded, red failed.'));
}

/** Sums the throughput of several queues minute by minute. */
export function sumThroughput(queues) {
  if (!queues.length) return [];
  return queues[0].throughput.map((m, i) => ({
    minute: m.minute,
    succeeded: queues.reduce((n, q) => n + (q.throughput[i] ? q.throughput[i].succeeded : 0), 0),
    failed: queues.reduce((n, q) => n + (q.throughput[i] ? q.throughput[i].failed : 0), 0),
  }));
}

/** The `span` days (`YYYY-MM-DD`, UTC) that end with `last`, oldest first. */
function daysEnding(last, span) {
  const end = Date.parse(`${last}T00:00:00Z`);
  return Array.from({ length: span }, (_, i) => new Date(end - (span - 1 - i) * 86400000).toISOString().slice(0, 10));
}

/** Runs and failures per task per day (`GET /history/daily`: `[{day, task, runs, failures}]`,
 * runs counting failures too) over the `span` days up to today (UTC), days without runs
 * included: one row of bars per task, a slot per day, its failed part red. */
export function dailyChart(counts, span) {
  if (!counts.length) return h('p', { class: 'empty' }, 'Nothing archived in this period yet.');
  // Today by this browser's clock, or the latest day counted if the server's clock is ahead.
  const last = [new Date().toISOString().slice(0, 10), ...counts.map((c) => c.day)].sort().at(-1);
  const days = daysEnding(last, span);
  const tasks = [...new Set(counts.map((c) => c.task))].sort();
  const width = 1100, rowHeight = 60, label = 140, pad = 14;
  const height = tasks.length * rowHeight + pad;
  const max = Math.max(1, ...counts.map((c) => c.runs));
  const step = (width - label) / days.length;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'xMinYMin meet', role: 'img', 'aria-label': 'Runs and failures per task per day',
    'data-first-day': days[0], 'data-last-day': days[days.length - 1] });
  chart.style.height = `${height}px`;
  tasks.forEach((task, row) => {
    const base = (row + 1) * rowHeight;
    const group = svg('g', { 'data-task': task });
    group.append(svg('text', { x: 0, y: base - rowHeight / 2 }, task));
    group.append(svg('line', { class: 'axis', x1: label, y1: base, x2: width, y2: base }));
    days.forEach((day, i) => {
      const c = counts.find((x) => x.task === task && x.day === day);
      if (!c) return;
      const x = label + i * step + 1;
      const scale = (rowHeight - 12) / max;
      const title = `${task} on ${day}: ${c.runs} runs, ${c.failures} failed`;
      const ok = svg('rect', { class: 'ok', x, y: base - c.runs * scale, width: Math.max(1, step - 2), height: (c.runs - c.failures) * scale,
        'data-day': day, 'data-runs': c.runs, 'data-failures': c.failures });
      ok.append(svg('title', {}, title));
      group.append(ok);
      if (c.failures > 0) {
        const bad = svg('rect', { class: 'bad', x, y: base - c.failures * scale, width: Math.max(1, step - 2), height: c.failures * scale });
        bad.append(svg('title', {}, title));
        group.append(bad);
      }
    });
    chart.append(group);
  });
  chart.append(svg('text', { x: label, y: height - 2 }, days[0]));
  chart.append(svg('text', { x: width - 70, y: height - 2 }, days[days.length - 1]));
  return h('div', { class: 'chart daily' }, chart,
    h('div', { class: 'legend' }, `Runs per task and day (UTC), ${max} at most: green succeeded or revoked, red failed.`));
}
