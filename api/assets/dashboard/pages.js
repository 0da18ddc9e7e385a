// Celeriac dashboard: the pages. Each page is `mount(main, params, query, ui)` and returns a
// function that stops it. Lists poll their JSON every 2 s (`polled`); the task page and the
// progress example follow their task live with `watchTask` (SSE, or long polls with a token).

import { get, getText, post, del, watchTask, isTerminal } from './api.js';
import { h, table, taskTable, stateBadge, time, age, json, progressBar, throughputChart, sumThroughput, taskLink, dailyChart, tagsText } from './render.js';

const REFRESH_MS = 2000;
const STATES = ['PENDING', 'SCHEDULED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'];
const enc = encodeURIComponent;

/** Nested arrays of nodes, with the null and false left out, as one flat list. */
const nodes = (value) => [value].flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false);

/** Loads and renders now, then every 2 s, until stopped; errors go to the status line. */
function polled(main, ui, load, render) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      const data = await load();
      if (stopped) return;
      main.replaceChildren(...nodes(render(data)));
      ui.ok();
    } catch (error) {
      if (!stopped) ui.error(error);
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Runs a button's action and reports its outcome. */
function action(ui, label, run, after) {
  return async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await run();
      ui.say(`${label}: done`);
      if (after) after();
    } catch (error) {
      ui.error(error);
    } finally {
      button.disabled = false;
    }
  };
}

const queueColumns = [
  ['Queue', (q) => h('a', { href: `#/queue/${enc(q.name)}` }, q.name)],
  ['Status', (q) => (q.paused ? h('span', { class: 'paused' }, 'paused') : 'running')],
  ['Pending', (q) => q.pending, true],
  // A sharded queue's depth per shard, shown where it says something (docs/design.md).
  ['Shards', (q) => (q.shards > 1 ? `${q.shards}: ${(q.shard_pending || []).join(' / ')}` : '1'), true],
  ['Scheduled', (q) => q.scheduled, true],
  ['Active', (q) => q.active, true],
  ['Retrying', (q) => q.retrying, true],
  ['Dead', (q) => q.dead, true],
  ['Succeeded', (q) => q.succeeded_total, true],
  ['Failed', (q) => q.failed_total, true],
  ['Last minute', (q) => `${q.succeeded_last_minute} / ${q.failed_last_minute}`, true],
  ['Oldest pending', (q) => age(q.oldest_pending_age_secs), true],
  ['Limits', limitsCell],
];

/** A queue's rate limit and concurrency cap as they stand: tokens left, slots in use, and
 * what holds its pending tasks back right now. */
function limitsCell(q) {
  const l = q.limits;
  if (!l) return '—';
  const parts = [];
  if (l.rate) parts.push(`${l.rate} (burst ${l.burst}, ${l.tokens} tokens left)`);
  if (l.concurrency) parts.push(`${l.running} / ${l.concurrency} running`);
  const perKey = [l.key_rate, l.key_concurrency && `${l.key_concurrency} at once`].filter(Boolean);
  if (perKey.length) parts.push(`each key ${perKey.join(', ')}${l.parked ? ` (${l.parked} parked)` : ''}`);
  return h('span', { class: 'limits' }, parts.join(' · '),
    l.held ? h('span', { class: 'held' }, ` held by ${l.held === 'rate' ? 'the rate limit' : 'the concurrency cap'}`) : '');
}

const workerColumns = [
  ['Worker', (w) => h('code', {}, w.id)],
  ['Host', (w) => `${w.host} (pid ${w.pid})`],
  ['Queues', (w) => w.queues.join(', ')],
  ['Running', (w) => `${w.running} / ${w.concurrency}`, true],
  ['Processed', (w) => w.processed, true],
  ['Failed', (w) => w.failed, true],
  ['Started', (w) => time(w.started_at)],
  ['Heartbeat', (w) => time(w.last_heartbeat)],
];

export function overview(main, params, query, ui) {
  return polled(main, ui, async () => {
    const [queues, workers] = await Promise.all([get('/queues'), get('/workers')]);
    return { queues: queues.queues, workers: workers.workers };
  }, ({ queues, workers }) => [
    h('h1', {}, 'Overview'),
    h('section', { class: 'card' }, h('h2', {}, 'Throughput'), throughputChart(sumThroughput(queues))),
    h('section', { class: 'card' }, h('h2', {}, 'Queues'),
      table(queueColumns, queues, (q) => ({ 'data-queue': q.name }), 'No queue has been used yet.')),
    h('section', { class: 'card' }, h('h2', {}, `Workers (${workers.length})`),
      table(workerColumns, workers, (w) => ({ 'data-worker': w.id }), 'No live worker.')),
  ]);
}

export function queue(main, [name], query, ui) {
  const state = query.get('state') || '';
  const cursor = query.get('cursor') || '';
  const link = (s) => `#/queue/${enc(name)}${s ? `?state=${s}` : ''}`;
  return polled(main, ui, async () => {
    const params = new URLSearchParams({ queue: name, limit: '50' });
    if (state) params.set('state', state);
    if (cursor) params.set('cursor', cursor);
    const [queues, tasks] = await Promise.all([get('/queues'), get(`/tasks?${params}`)]);
    return { q: queues.queues.find((x) => x.name === name), tasks };
  }, ({ q, tasks }) => [
    h('h1', {}, `Queue ${name}`, q && q.paused ? h('span', { class: 'paused' }, ' (paused)') : ''),
    h('div', { class: 'actions' },
      h('button', { id: 'pause', onclick: action(ui, 'Pause', () => post(`/queues/${enc(name)}/pause`)) }, 'Pause'),
      h('button', { id: 'resume', onclick: action(ui, 'Resume', () => post(`/queues/${enc(name)}/resume`)) }, 'Resume'),
      h('button', {
        id: 'purge', class: 'danger',
        onclick: (e) => {
          if (!window.confirm(`Revoke every pending task of ${name}?`)) return;
          action(ui, 'Purge', () => del(`/queues/${enc(name)}/pending`))(e);
        },
      }, 'Purge pending'),
      h('a', { href: `#/dead/${enc(name)}` }, 'Dead letters')),
    q ? table(queueColumns.slice(1), [q], () => ({ 'data-queue': name })) : h('p', { class: 'empty' }, 'This queue has not been used yet.'),
    h('h2', {}, 'Tasks'),
    h('div', { class: 'filters' },
      h('a', { href: link(''), class: state ? '' : 'on' }, 'All'),
      STATES.map((s) => h('a', { href: link(s), class: state === s ? 'on' : '' }, s))),
    taskTable(tasks.tasks),
    tasks.next_cursor
      ? h('p', {}, h('a', { href: `${link(state)}${state ? '&' : '?'}cursor=${enc(tasks.next_cursor)}` }, 'Older tasks →'))
      : null,
  ]);
}

export function task(main, [id], query, ui) {
  const bar = progressBar(null);
  const stateSlot = h('span', {});
  const details = h('div', {});
  const output = h('div', {});
  let stopWatch = () => {};
  const follow = () => {
    stopWatch();
    stopWatch = watchTask(id, show, (p) => bar.update(p, false));
  };
  const revoke = h('button', { id: 'revoke', class: 'danger', onclick: action(ui, 'Revoke', () => post(`/tasks/${enc(id)}/revoke`), follow) }, 'Revoke');
  const retry = h('button', { id: 'retry', onclick: action(ui, 'Retry', () => post(`/tasks/${enc(id)}/retry`), follow) }, 'Retry');
  function show(r) {
    ui.ok();
    stateSlot.replaceChildren(stateBadge(r.state));
    bar.update(r.progress, r.state === 'SUCCESS');
    revoke.disabled = isTerminal(r.state);
    // An archived one too (the gateway stores it anew from the archive), unless it ran in a
    // workflow (the gateway runs no such member again alone).
    retry.disabled = !['FAILURE', 'REVOKED'].includes(r.state) || Boolean(r.archived && r.workflow);
    const tags = tagsText(r);
    details.replaceChildren(...nodes([
      r.archived ? h('p', { id: 'archived', class: 'empty' }, 'From the archive: its Redis record has expired.') : null,
      h('dl', { class: 'record' },
        ['task', 'queue', 'attempt', 'max_retries', 'worker'].flatMap((k) => [h('dt', {}, k), h('dd', {}, r[k] ?? '—')]),
        ['created_at', 'eta', 'started_at', 'finished_at', 'expires_at'].flatMap((k) => [h('dt', {}, k), h('dd', {}, time(r[k]))]),
        r.workflow ? [h('dt', {}, 'workflow'), h('dd', {}, `${r.workflow.workflow_id} (node ${r.workflow.node})`)] : [],
        tags ? [h('dt', {}, 'tags'), h('dd', { id: 'tags' }, tags)] : [])]));
    output.replaceChildren(...nodes([
      h('h2', {}, 'Arguments'), json(r.args),
      r.result !== null && r.result !== undefined ? [h('h2', {}, 'Result'), json(r.result)] : null,
      r.error ? [h('h2', {}, 'Error'), json(r.error)] : null]));
  }
  main.replaceChildren(
    h('h1', {}, 'Task ', h('code', {}, id), ' ', stateSlot),
    h('div', { class: 'actions' }, revoke, retry),
    h('section', { class: 'card' }, h('h2', {}, 'Progress'), bar),
    h('section', { class: 'card' }, details),
    h('section', { class: 'card' }, output));
  get(`/tasks/${enc(id)}`).then(show, (e) => ui.error(e));
  follow();
  return () => stopWatch();
}

export function workers(main, params, query, ui) {
  return polled(main, ui, () => get('/workers'), ({ workers: list }) => [
    h('h1', {}, 'Workers'),
    table(workerColumns, list, (w) => ({ 'data-worker': w.id }), 'No live worker.'),
  ]);
}

export function schedules(main, params, query, ui) {
  return polled(main, ui, () => get('/schedules'), ({ schedules: list }) => [
    h('h1', {}, 'Schedules'),
    table([
      ['Name', (s) => s.name],
      ['Task', (s) => s.task],
      ['When', (s) => (s.every ? `every ${s.every}` : `${s.cron} (${s.timezone})`)],
      ['Source', (s) => s.source],
      ['Status', (s) => (s.paused ? h('span', { class: 'paused' }, 'paused') : 'active')],
      ['Next run', (s) => time(s.next_run)],
      ['Last run', (s) => time(s.last_run)],
      ['Last task', (s) => (s.last_task_id ? taskLink(s.last_task_id) : '—')],
    ], list, (s) => ({ 'data-schedule': s.name }), 'No schedule.'),
  ]);
}

export function dead(main, [only], query, ui) {
  return polled(main, ui, async () => {
    const names = only ? [only] : (await get('/queues')).queues.map((q) => q.name);
    const lists = await Promise.all(names.map((n) => get(`/queues/${enc(n)}/dead?limit=50`)));
    return names.map((name, i) => ({ name, tasks: lists[i].tasks }));
  }, (queues) => [
    h('h1', {}, only ? `Dead letters of ${only}` : 'Dead letters'),
    queues.length ? queues.map(({ name, tasks }) => h('section', { class: 'card' },
      h('h2', {}, name),
      taskTable(tasks, [
        ['Error', (t) => (t.error ? `${t.error.kind || ''}: ${t.error.message}` : '—')],
        ['Died', (t) => time(t.finished_at)],
        ['', (t) => h('button', { onclick: action(ui, 'Retry', () => post(`/tasks/${enc(t.task_id)}/retry`)) }, 'Retry')],
      ]))) : h('p', { class: 'empty' }, 'No queue has been used yet.'),
  ]);
}

/** For frontend developers: enqueue a `sleep` task and drive a bar from its event stream. */
export function progressExample(main, params, query, ui) {
  const bar = progressBar(null);
  const state = h('span', { id: 'example-state' });
  const idSlot = h('span', { id: 'example-task' });
  let stopWatch = () => {};
  const start = h('button', {
    id: 'start-sleep',
    onclick: action(ui, 'Enqueue', async () => {
      stopWatch();
      bar.update(null, false);
      const accepted = await post('/tasks', { task: 'sleep', args: { ms: 3000 } });
      idSlot.replaceChildren(taskLink(accepted.task_id));
      state.replaceChildren(stateBadge(accepted.state));
      stopWatch = watchTask(accepted.task_id, (r) => {
        state.replaceChildren(stateBadge(r.state));
        bar.update(r.progress, r.state === 'SUCCESS');
      }, (p) => bar.update(p, false));
    }),
  }, 'Enqueue a 3 s sleep task');
  main.replaceChildren(
    h('h1', {}, 'Progress bar example'),
    h('p', {}, 'Enqueues ', h('code', {}, 'POST /tasks {"task":"sleep","args":{"ms":3000}}'),
      ' and drives the bar from ', h('code', {}, 'GET /tasks/{id}/events'), ' (Server-Sent Events).'),
    h('div', { class: 'actions' }, start),
    h('section', { class: 'card' }, h('p', {}, 'Task: ', idSlot, ' ', state), bar),
    h('h2', {}, 'The code'),
    h('pre', {}, [
      "const { task_id } = await (await fetch('/tasks', {",
      "  method: 'POST', headers: { 'Content-Type': 'application/json' },",
      "  body: JSON.stringify({ task: 'sleep', args: { ms: 3000 } }) })).json();",
      "const events = new EventSource(`/tasks/${task_id}/events`);",
      "events.addEventListener('progress', (e) => {",
      "  const { current, total } = JSON.parse(e.data).progress;",
      "  bar.style.width = `${100 * current / total}%`;",
      "});",
      "events.addEventListener('state', (e) => {",
      "  if (['SUCCESS', 'FAILURE', 'REVOKED'].includes(JSON.parse(e.data).state)) events.close();",
      "});",
    ].join('\n')));
  return () => stopWatch();
}

/** The days the history page's chart covers, today's included. */
const CHART_DAYS = 14;

const HISTORY_FILTERS = [
  ['task', 'Task', 'send_email'],
  ['queue', 'Queue', 'emails'],
  ['tag', 'Tag', 'user_id:42'],
  ['error', 'Error words', 'timeout'],
  ['args', 'Arguments contain (JSON)', '{"to":"ada@example.com"}'],
  ['from', 'Ended from (RFC 3339)', '2026-12-01T00:00:00Z'],
  ['to', 'Ended before (RFC 3339)', ''],
];

/** The archive's backlog from /metrics: `{ total, oldest, queues: [{queue, entries}] }`, in
 * hand-overs (each: the tasks one script call ended) and the oldest one's wait in seconds. */
async function archiveBacklog() {
  const text = await getText('/metrics');
  const total = text.match(/^celeriac_archive_backlog (\d+)$/m);
  const oldest = text.match(/^celeriac_archive_oldest_seconds ([\d.]+)$/m);
  const queues = [...text.matchAll(/^celeriac_archive_backlog_queue\{queue="([^"]+)"\} (\d+)$/gm)]
    .map(([, queue, entries]) => ({ queue, entries: Number(entries) }));
  return total ? { total: Number(total[1]), oldest: oldest ? Number(oldest[1]) : 0, queues } : null;
}

/** The history: a search of the PostgreSQL archive (`GET /tasks?source=archive`), the runs
 * and failures per task per day (`GET /history/daily`) and the archive's backlog. */
export function history(main, params, query, ui) {
  let stopped = false;
  const fields = HISTORY_FILTERS.map(([name, label, example]) => h('label', {},
    label, h('input', { name, value: query.get(name) || '', placeholder: example })));
  const state = h('select', { name: 'state' }, h('option', { value: '' }, 'any'),
    ['SUCCESS', 'FAILURE', 'REVOKED'].map((s) => h('option', { value: s, selected: query.get('state') === s }, s)));
  const form = h('form', {
    id: 'history-search', class: 'search',
    onsubmit: (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const input of form.querySelectorAll('input, select')) if (input.value.trim()) next.set(input.name, input.value.trim());
      const hash = `#/history${next.toString() ? `?${next}` : ''}`;
      if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
      else location.hash = hash;
    },
  }, fields, h('label', {}, 'State', state), h('button', { type: 'submit' }, 'Search'));
  const backlogSlot = h('section', { class: 'card', id: 'archive-backlog' }, h('h2', {}, 'Archive backlog'), 'Loading…');
  const chartSlot = h('section', { class: 'card', id: 'history-chart' }, h('h2', {}, 'Runs and failures per day'), 'Loading…');
  const results = h('section', { class: 'card', id: 'history-results' }, h('h2', {}, 'Archived tasks'), 'Loading…');
  main.replaceChildren(h('h1', {}, 'History'), form, results, chartSlot, backlogSlot);

  const search = new URLSearchParams({ source: 'archive', limit: '50' });
  for (const [name] of [...HISTORY_FILTERS, ['state'], ['cursor']]) if (query.get(name)) search.set(name, query.get(name));
  get(`/tasks?${search}`).then((page) => {
    if (stopped) return;
    const older = new URLSearchParams(query);
    if (page.next_cursor) older.set('cursor', page.next_cursor);
    results.replaceChildren(...nodes([h('h2', {}, 'Archived tasks'),
      taskTable(page.tasks, [
        ['Ended', (t) => time(t.finished_at)],
        // A task's tags are among its options (`TaskOptions.tags`).
        ['Tags', tagsText],
      ]),
      page.next_cursor ? h('p', {}, h('a', { id: 'history-older', href: `#/history?${older}` }, 'Older tasks →')) : null]));
    ui.ok();
  }, (error) => { if (!stopped) { results.replaceChildren(h('h2', {}, 'Archived tasks'), h('p', { class: 'empty' }, error.message)); ui.error(error); } });
  get(`/history/daily?days=${CHART_DAYS}`).then((counts) => {
    if (!stopped) chartSlot.replaceChildren(h('h2', {}, `Runs and failures per day (last ${CHART_DAYS} days)`), dailyChart(counts, CHART_DAYS));
  }, (error) => { if (!stopped) chartSlot.replaceChildren(h('h2', {}, 'Runs and failures per day'), h('p', { class: 'empty' }, error.message)); });
  const showBacklog = () => archiveBacklog().then((backlog) => {
    if (stopped) return;
    backlogSlot.replaceChildren(h('h2', {}, 'Archive backlog'), ...nodes(backlog
      ? [h('p', {}, 'Hand-overs not archived yet (each holds the tasks one script call ended): ',
        h('strong', { id: 'backlog-total' }, String(backlog.total)),
        backlog.total ? `; the oldest has waited ${backlog.oldest.toFixed(1)} s` : ''),
        table([['Queue', (b) => b.queue], ['Waiting', (b) => b.entries, true]], backlog.queues, (b) => ({ 'data-backlog-queue': b.queue }), 'Nothing waits: every hand-over is archived.')]
      : h('p', { class: 'empty' }, 'The archive is off on this gateway.')));
  }, (error) => { if (!stopped) backlogSlot.replaceChildren(h('h2', {}, 'Archive backlog'), h('p', { class: 'empty' }, error.message)); });
  showBacklog();
  const timer = setInterval(showBacklog, REFRESH_MS);
  return () => { stopped = true; clearInterval(timer); };
}
