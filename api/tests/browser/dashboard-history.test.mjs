// Browser test of the dashboard's History page against a real PostgreSQL archive (the harness
// starts one, with celeriac-archiver): the search lists archived tasks and its tag filter keeps
// exactly the matching one, the chart shows each task's runs and failures of the day on an axis
// of the last 14 days, and the archive's backlog is shown (0 once everything is archived); a
// task whose Redis record has expired is shown from the archive, with its tags, and a revoked
// one can be retried from there (not a workflow member).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { client, eventually, openPage, startStack } from './harness.mjs';

let stack;
let api;

before(async () => {
  stack = await startStack({ archive: true, resultTtl: '5s' });
  api = client(stack.base);
});

after(async () => {
  if (stack) await stack.close();
});

test('the history page searches the archive, charts runs and failures per day, and shows the backlog', { timeout: 90000 }, async () => {
  const ids = [];
  for (let i = 0; i < 3; i += 1) ids.push(await api.enqueue({ task: 'add', args: [i, 1] }));
  const tagged = await api.enqueue({ task: 'add', args: [40, 2], tags: { user_id: '42' } });
  ids.push(tagged);
  for (let i = 0; i < 2; i += 1) ids.push(await api.enqueue({ task: 'fail', args: { message: `boom ${i}` } }));
  await eventually('every task to be archived', async () => {
    const found = (await api.get('/tasks?source=archive&limit=50')).body.tasks.map((t) => t.task_id);
    return ids.every((id) => found.includes(id));
  }, 30000);

  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard#/history`);
  await page.locator('#history-results tr[data-task-id]').first().waitFor();
  assert.equal(await page.locator('#history-results tr[data-task-id]').count(), ids.length);

  // The chart: the 14 days up to today, days without runs included, and today's bar of each
  // task, with its runs and failures.
  const today = new Date().toISOString().slice(0, 10);
  const chart = page.locator('#history-chart svg');
  await chart.waitFor();
  const first = new Date(Date.parse(`${today}T00:00:00Z`) - 13 * 86400000).toISOString().slice(0, 10);
  assert.deepEqual([await chart.getAttribute('data-first-day'), await chart.getAttribute('data-last-day')], [first, today]);
  const add = page.locator(`#history-chart g[data-task="add"] rect.ok[data-day="${today}"]`);
  await add.waitFor();
  assert.deepEqual([await add.getAttribute('data-runs'), await add.getAttribute('data-failures')], ['4', '0']);
  const fail = page.locator(`#history-chart g[data-task="fail"] rect.ok[data-day="${today}"]`);
  assert.deepEqual([await fail.getAttribute('data-runs'), await fail.getAttribute('data-failures')], ['2', '2']);
  assert.equal(await page.locator('#history-chart g[data-task="fail"] rect.bad').count(), 1);

  // The backlog, from /metrics.
  await eventually('the backlog to show 0', async () => (await page.locator('#backlog-total').textContent()) === '0');
  assert.match(await page.locator('#archive-backlog').textContent(), /Nothing waits: every hand-over is archived/);

  // A search by tag keeps exactly the tagged task, and puts the filter in the address.
  await page.locator('#history-search input[name="tag"]').fill('user_id:42');
  await page.locator('#history-search button[type="submit"]').click();
  await eventually('the tag search to keep one task', async () => {
    const rows = await page.locator('#history-results tr[data-task-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.taskId));
    return rows.length === 1 && rows[0] === tagged;
  });
  assert.match(page.url(), /#\/history\?tag=user_id%3A42$/);
  // The row shows the task's tags.
  assert.match(await page.locator(`#history-results tr[data-task-id="${tagged}"]`).textContent(), /user_id:42/);
  // A search by state: the two failures.
  await page.locator('#history-search input[name="tag"]').fill('');
  await page.locator('#history-search select[name="state"]').selectOption('FAILURE');
  await page.locator('#history-search button[type="submit"]').click();
  await eventually('the state search to keep the failures', async () => {
    const states = await page.locator('#history-results tr[data-task-id] [data-state]').evaluateAll((els) => els.map((e) => e.dataset.state));
    return states.length === 2 && states.every((s) => s === 'FAILURE');
  });

  // Once its Redis record has expired (5 s), a task's page reads it from the archive, says so,
  // shows its tags and offers no action.
  await eventually('the tagged task to be read from the archive', async () => (await api.get(`/tasks/${tagged}`)).body.archived === true, 30000);
  await page.goto(`${stack.base}/dashboard#/task/${tagged}`);
  await page.locator('#archived').waitFor();
  assert.equal(await page.locator('#tags').textContent(), 'user_id:42');
  assert.equal(await page.locator('#revoke').isDisabled(), true);
  assert.equal(await page.locator('#retry').isDisabled(), true);

  // A revoked task can be retried once only the archive holds it (a failure's record stays
  // in Redis as long as its dead letter): it runs again under its id, live in Redis, and its
  // page follows it there.
  const revoked = await api.enqueue({ task: 'add', args: [20, 1], countdown: 3600 });
  assert.equal((await api.post(`/tasks/${revoked}/revoke`)).status, 200);
  await eventually('the revoked task to be read from the archive', async () => (await api.get(`/tasks/${revoked}`)).body.archived === true, 30000);
  await page.goto(`${stack.base}/dashboard#/task/${revoked}`);
  await page.locator('#archived').waitFor();
  assert.equal(await page.locator('#retry').isDisabled(), false);
  await page.locator('#retry').click();
  await page.locator('#archived').waitFor({ state: 'detached' });
  await eventually('its page to show the live success', async () => (await page.locator('h1 [data-state]').textContent()) === 'SUCCESS');
  const { body } = await api.get(`/tasks/${revoked}`);
  assert.deepEqual([body.state, body.result, body.archived], ['SUCCESS', 21, undefined]);

  // A workflow member is not retried from the archive (it ran as a step of its workflow):
  // one revoked before it ran (its queue paused meanwhile) is shown with Retry disabled.
  assert.equal((await api.post('/queues/default/pause')).status, 200);
  const workflow = await api.post('/workflows', { chain: [{ task: 'add', args: [1, 1] }] });
  assert.equal(workflow.status, 202, JSON.stringify(workflow.body));
  const members = (await api.get(workflow.body.status_url)).body.members;
  assert.equal((await api.post(`${workflow.body.status_url}/revoke`)).status, 200);
  assert.equal((await api.post('/queues/default/resume')).status, 200);
  const member = members[0].task_id;
  await eventually('the revoked member to be read from the archive', async () => {
    const { body: record } = await api.get(`/tasks/${member}`);
    return record.archived === true && record.state === 'REVOKED';
  }, 30000);
  await page.goto(`${stack.base}/dashboard#/task/${member}`);
  await page.locator('#archived').waitFor();
  assert.equal(await page.locator('#retry').isDisabled(), true);
  assert.deepEqual(page.errors, []);
});
