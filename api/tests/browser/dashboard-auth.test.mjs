// Browser test of the dashboard behind a token: a 401 shows the token prompt, the token is
// kept in sessionStorage and sent as a bearer header, and the task page's progress bar is
// driven by long polls (EventSource cannot send the header).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { client, eventually, openPage, startStack } from './harness.mjs';

const TOKEN = 'browser-admin-token-0123456789abcdef';
let stack;
let api;

before(async () => {
  stack = await startStack({ adminToken: TOKEN });
  api = client(stack.base, TOKEN);
});

after(async () => {
  if (stack) await stack.close();
});

test('a 401 asks for a token, which then drives every call and the progress bar', async () => {
  const id = await api.enqueue({ task: 'sleep', args: { ms: 1500 } });
  const page = await openPage(stack.context);
  await page.goto(`${stack.base}/dashboard`);
  await page.locator('#token-form').waitFor();
  await page.fill('#token-input', TOKEN);
  await page.click('#token-form button[type="submit"]');
  await page.locator('tr[data-queue="default"]').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('celeriac.token')), TOKEN);
  assert.equal(await page.locator('#token-form').isHidden(), true);

  await page.goto(`${stack.base}/dashboard#/task/${id}`);
  await page.locator('h1 [data-state="SUCCESS"]').waitFor({ timeout: 20000 });
  await eventually('the bar to be full', async () => (await page.locator('[role="progressbar"]').getAttribute('aria-valuenow')) === '100');
  // The only errors are the browser's notes of the first, refused calls.
  const unexpected = page.errors.filter((e) => !e.includes('401'));
  assert.deepEqual(unexpected, []);
  assert.ok(page.errors.length > 0, 'the unauthenticated calls were refused');
  await page.close();
});
