// The README's start command, scripts/run.sh, as a user runs it (with the binaries of the test
// build, on free ports, its data in a temporary folder): everything comes up, an e-mail
// reaches the SMTP sink and, within seconds, the PostgreSQL archive run.sh started (found by a
// search of GET /tasks?source=archive), a worker killed with SIGKILL is started again and its task comes back
// and succeeds, and Ctrl-C (SIGINT to the process group) stops every process it started.

import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { binDir, client, eventually, freePort, portOpen } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

/** The processes of group `pgid` still running (`ps` lines; a zombie, which holds nothing
 * and waits for init to reap it, does not count). */
function groupLeft(pgid) {
  const lines = execSync(`ps -o pid=,stat=,cmd= -g ${pgid} || true`).toString().trim().split('\n');
  return lines.filter((line) => line && !/^\s*\d+\s+Z/.test(line));
}

test('run.sh starts the system, restarts a killed worker, and Ctrl-C stops it all', { timeout: 120000 }, async () => {
  const [httpPort, redisPort, smtpPort, pgPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const data = mkdtempSync(path.join(os.tmpdir(), 'celeriac-run-'));
  let output = '';
  let stopped;
  let left;
  // Its own process group, as a terminal gives it: Ctrl-C signals the whole group.
  const script = spawn('bash', [path.join(repo, 'scripts/run.sh')], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: String(httpPort),
      REDIS_PORT: String(redisPort),
      SMTP_PORT: String(smtpPort),
      PG_PORT: String(pgPort),
      BIN_DIR: binDir,
      DATA_DIR: data,
      RUST_LOG: 'warn',
      // A killed worker's task comes back when its lease expires: 3 s here, not 30.
      CELERIAC__WORKER__LEASE_SECS: '3',
    },
  });
  const exited = new Promise((done) => script.once('exit', (code, signal) => done(code ?? signal)));
  for (const stream of [script.stdout, script.stderr]) stream.on('data', (chunk) => { output = (output + chunk).slice(-8000); });
  try {
    const base = `http://127.0.0.1:${httpPort}`;
    const api = client(base);
    await eventually('the gateway to answer /healthz', async () => (await fetch(`${base}/healthz`)).ok, 30000);
    const [first] = await eventually('a worker to register', async () => {
      const workers = (await api.get('/workers')).body.workers;
      return workers.length > 0 && workers;
    });

    const email = await api.post('/emails', { to: 'ada@example.com', subject: 'Hi', body: 'Hello' });
    assert.equal(email.status, 202, JSON.stringify(email.body));
    await eventually('the e-mail to be sent', async () => (await api.get(`/tasks/${email.body.task_id}`)).body.state === 'SUCCESS');
    assert.equal(readdirSync(path.join(data, 'mail')).filter((f) => f.endsWith('.eml')).length, 1, 'the sink received it');
    const archived = await eventually('the e-mail to be found in the archive', async () => {
      const found = await api.get('/tasks?source=archive&task=send_email&args=' + encodeURIComponent(JSON.stringify({ to: 'ada@example.com' })));
      assert.equal(found.status, 200, JSON.stringify(found.body));
      return found.body.tasks.find((task) => task.task_id === email.body.task_id);
    }, 10000);
    assert.equal(archived.state, 'SUCCESS');
    assert.equal(archived.archived, true);

    const id = await api.enqueue({ task: 'sleep', args: { ms: 3000 } });
    await eventually('the task to start', async () => (await api.get(`/tasks/${id}`)).body.state === 'STARTED');
    process.kill(first.pid, 'SIGKILL');
    await eventually('a new worker to register', async () => {
      const workers = (await api.get('/workers')).body.workers;
      return workers.some((w) => w.pid !== first.pid);
    }, 30000);
    const done = await eventually('the killed worker\'s task to succeed', async () => {
      const task = (await api.get(`/tasks/${id}`)).body;
      return task.state === 'SUCCESS' && task;
    }, 30000);
    assert.notEqual(done.worker, first.id, 'the new worker ran it');
  } catch (error) {
    error.message += `\nrun.sh output:\n${output}`;
    throw error;
  } finally {
    if (groupLeft(script.pid).length > 0) process.kill(-script.pid, 'SIGINT');
    let timer;
    stopped = await Promise.race([exited.then(() => true), new Promise((done) => { timer = setTimeout(() => done(false), 20000); })]);
    clearTimeout(timer);
    left = groupLeft(script.pid);
    if (left.length > 0) process.kill(-script.pid, 'SIGKILL');
    rmSync(data, { recursive: true, force: true });
  }
  assert.ok(stopped, `run.sh did not exit on Ctrl-C:\n${output}`);
  assert.deepEqual(left, [], `a process of run.sh outlived Ctrl-C:\n${output}`);
  for (const port of [httpPort, redisPort, smtpPort, pgPort]) assert.equal(await portOpen(port), false, `port ${port} is closed`);
});
