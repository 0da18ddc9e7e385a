// Browser-test harness: starts a throwaway redis-server, the debug gateway and a worker on
// free loopback ports (binaries from CELERIAC_BIN_DIR, default ../../../target/debug), and
// headless Debian Chromium driven by playwright-core with a fresh profile; stops them all.
// Its helpers (free ports, polling, the JSON client) serve run-script.test.mjs too.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const binDir = path.resolve(here, process.env.CELERIAC_BIN_DIR || '../../../target/debug');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` (async, truthy = done) until it passes or `ms` run out. */
export async function eventually(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** Whether something listens on loopback `port`. */
export function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

function start(command, args, env, name) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000); });
  child.on('exit', (code, signal) => {
    if (!child.stopping) console.error(`${name} exited early (${code ?? signal}): ${stderr}`);
  });
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.stopping = true;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
  await exited;
  clearTimeout(timer);
}

/** A throwaway PostgreSQL with a `celeriac` database, started by the testkit's
 * `celeriac-test-postgres` (the one recipe every harness uses: a free loopback port, run as
 * the `postgres` user when root); `stop()` stops it, which removes it. */
export async function startPostgres() {
  const child = spawn(path.join(binDir, 'celeriac-test-postgres'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('\n')) resolve(output.split('\n')[0]);
    });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code, signal) => reject(new Error(`celeriac-test-postgres exited (${code ?? signal}): ${output}`)));
    child.on('error', reject);
  });
  return {
    url,
    stop: () => stop(child),
  };
}

/** The whole stack plus a browser; `close()` stops everything it started. With
 * `adminToken`, the gateway requires that token (and the harness sends it); with `archive`,
 * a PostgreSQL and the archiver; with `resultTtl` (e.g. '5s'), ended tasks' Redis records
 * last that long. */
export async function startStack({ adminToken, archive, resultTtl } = {}) {
  const redisPort = await freePort();
  const httpPort = await freePort();
  const namespace = `browser-${process.pid}-${Date.now()}`;
  const processes = [];
  const profile = mkdtempSync(path.join(os.tmpdir(), 'celeriac-chromium-'));
  let context;
  let base;
  let postgres;
  const close = async () => {
    if (context) await context.close().catch(() => {});
    for (const child of processes.reverse()) await stop(child);
    if (postgres) await postgres.stop();
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    processes.push(start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, 'redis-server'));
    await eventually('redis-server to listen', () => portOpen(redisPort));
    const env = {
      CELERIAC_CONFIG_DIR: '/nonexistent',
      CELERIAC__REDIS__URL: `redis://127.0.0.1:${redisPort}`,
      CELERIAC__REDIS__NAMESPACE: namespace,
      CELERIAC__HTTP__BIND: `127.0.0.1:${httpPort}`,
      RUST_LOG: 'warn',
      ...(adminToken ? { CELERIAC__AUTH__ADMIN_TOKENS: adminToken } : {}),
      ...(resultTtl ? { CELERIAC__TASKS__RESULT_TTL: resultTtl } : {}),
    };
    if (archive) {
      postgres = await startPostgres();
      Object.assign(env, { CELERIAC__ARCHIVE__ENABLED: 'true', CELERIAC__ARCHIVE__DATABASE_URL: postgres.url });
    }
    base = `http://127.0.0.1:${httpPort}`;
    processes.push(start(path.join(binDir, 'celeriac-api'), [], env, 'celeriac-api'));
    await eventually('the gateway to answer /healthz', async () => (await fetch(`${base}/healthz`)).ok);
    processes.push(start(path.join(binDir, 'celeriac-worker'), ['--queues', 'default'], env, 'celeriac-worker'));
    if (archive) processes.push(start(path.join(binDir, 'celeriac-archiver'), [], env, 'celeriac-archiver'));
    const api = client(base, adminToken);
    await eventually('the worker to register', async () => (await api.get('/workers')).body.workers.length > 0);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
  } catch (error) {
    await close();
    throw error;
  }
  return { base, context, close, postgres };
}

/** A new page whose console errors and uncaught exceptions are collected in `page.errors`. */
export async function openPage(context) {
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (message) => { if (message.type() === 'error') page.errors.push(message.text()); });
  page.on('pageerror', (error) => page.errors.push(String(error)));
  return page;
}

/** JSON helpers against the gateway (sending `token` as a bearer token, if given). */
export function client(base, token) {
  const call = async (method, p, body) => {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(`${base}${p}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json().catch(() => null) };
  };
  return {
    get: (p) => call('GET', p),
    post: (p, body) => call('POST', p, body),
    put: (p, body) => call('PUT', p, body),
    enqueue: async (body) => {
      const { status, body: accepted } = await call('POST', '/tasks', body);
      if (status !== 202) throw new Error(`enqueue answered ${status}: ${JSON.stringify(accepted)}`);
      return accepted.task_id;
    },
  };
}
