// Browser tests of the dashboard: it loads without console errors, shows a queue's real depth,
// revokes a task with its button, and drives a progress bar to 100% from the SSE stream.
// With CELERIAC_SCREENSHOTS=1 it also writes docs/dashboard-overview.png and
// docs/dashboard-task.png.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { client, eventually, openPage, startStack } from './harness.mjs';

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs');
const screenshots = process.env.CELERIAC_SCREENSHOTS === '1';
let stack;
let api;

before(async () => {
  stack = await startStack();
  api = client(stack.base);
});

after(async () => {
  if (stack) await stack.close();
});

test('the overview loads without console errors and shows a queue with its real depth', async () => {
  const depth = 5;
  for (let i = 0; i < depth; i += 1) await api.enqueue({ task: 'noop', args: null, queue: 'parked' });
  // A few finished runs, so the throughput chart has bars.
  for (let i = 0; i < 3; i += 1) {
    const id = await api.enqueue({ task: 'add', args: [i, 1] });
    await eventually(`${id} to succeed`, async () => (await api.get(`/tasks/${id}?wait=5`)).body.state === 'SUCCESS');
  }
  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard`);
  const cell = page.locator('tr[data-queue="parked"] td[data-field="pending"]');
  await cell.waitFor();
  assert.equal(await cell.textContent(), String(depth));
  await page.locator('tr[data-worker]').first().waitFor();
  await page.locator('.chart svg rect.ok').first().waitFor();
  // One more task appears without a reload (the page polls every 2 s).
  await api.enqueue({ task: 'noop', args: null, queue: 'parked' });
  await eventually('the depth to refresh', async () => (await cell.textContent()) === String(depth + 1), 10000);
  if (screenshots) await page.screenshot({ path: path.join(docs, 'dashboard-overview.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the revoke button revokes a queued task', async () => {
  const id = await api.enqueue({ task: 'noop', args: null, queue: 'parked' });
  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard#/task/${id}`);
  await page.locator('h1 [data-state="PENDING"]').waitFor();
  await page.click('#revoke');
  await eventually('the task to be REVOKED', async () => (await api.get(`/tasks/${id}`)).body.state === 'REVOKED');
  await page.locator('h1 [data-state="REVOKED"]').waitFor();
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the pause and resume buttons steer the queue', async () => {
  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard#/queue/parked`);
  await page.locator('tr[data-task-id]').first().waitFor();
  await page.click('#pause');
  await eventually('the queue to be paused', async () => (await api.get('/queues')).body.queues.find((q) => q.name === 'parked').paused);
  await page.locator('h1 .paused').waitFor();
  await page.click('#resume');
  await eventually('the queue to run', async () => !(await api.get('/queues')).body.queues.find((q) => q.name === 'parked').paused);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a queue shows its rate limit and concurrency cap as they stand', async () => {
  await api.enqueue({ task: 'noop', args: null, queue: 'limited' });
  const set = await api.put('/queues/limited/limits', { rate: '20/min', concurrency: 2 });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard`);
  const cell = page.locator('tr[data-queue="limited"] td[data-field="limits"]');
  await cell.waitFor();
  assert.equal(await cell.textContent(), '20/min (burst 1, 1 tokens left) · 0 / 2 running');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the progress example shows a bar reaching 100% for a sleep task', async () => {
  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard#/progress-example`);
  const bar = page.locator('[role="progressbar"]');
  const seen = new Set();
  await page.click('#start-sleep');
  await eventually('the bar to reach 100%', async () => {
    const value = await bar.getAttribute('aria-valuenow');
    seen.add(value);
    return value === '100';
  }, 30000);
  assert.ok([...seen].some((v) => v !== '0' && v !== '100'), `the bar moved through steps: ${[...seen]}`);
  await page.locator('#example-state [data-state="SUCCESS"]').waitFor();
  const id = (await page.locator('#example-task code').textContent()).trim();
  assert.equal((await api.get(`/tasks/${id}`)).body.state, 'SUCCESS');

  // The task page of the same task: its bar is full and its result is shown.
  await page.goto(`${stack.base}/dashboard#/task/${id}`);
  await page.locator('h1 [data-state="SUCCESS"]').waitFor();
  const outer = page.locator('[role="progressbar"]');
  assert.equal(await outer.getAttribute('aria-valuenow'), '100');
  const [full, filled] = [await outer.boundingBox(), await outer.locator('div').boundingBox()];
  assert.ok(Math.abs(full.width - filled.width) < 1, `the bar is drawn full: ${filled.width} of ${full.width}`);
  await page.locator('text=slept_ms').waitFor();
  if (screenshots) await page.screenshot({ path: path.join(docs, 'dashboard-task.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});
