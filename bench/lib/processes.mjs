// Processes the run starts, and stopping them whatever happens (an error, Ctrl-C): the servers
// first, the database last, then the temporary directory.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export const children = [];
const cleanups = [];
let tmpDir;
let cleaning;
let interrupted = false;

export function log(message) {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** The run's temporary directory (the engine's data, the logs), removed by cleanup. */
export function makeTmpDir() {
  tmpDir = mkdtempSync(join(os.tmpdir(), 'wallet-bench-'));
  return tmpDir;
}

/** Something to undo at cleanup, before the processes stop (last registered, first run). */
export function onCleanup(...fns) {
  cleanups.push(...fns);
}

/** A child started elsewhere ({ name, proc, exited }), stopped at cleanup like the others. */
export function track(child) {
  children.push(child);
}

export function startChild(name, command, args, { env: childEnv, cwd, logFile }) {
  const proc = spawn(command, args, { env: childEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(logFile);
  proc.stdout.pipe(out);
  proc.stderr.pipe(out);
  const child = { name, proc, logFile, exited: false };
  proc.on('exit', (code, signal) => {
    child.exited = true;
    child.exitCode = code;
    child.exitSignal = signal;
  });
  children.push(child);
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child, graceMs = 8_000) {
  if (child.exited || child.proc.exitCode !== null) return;
  const exited = new Promise((resolve) => child.proc.once('exit', resolve));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!child.exited) child.proc.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

export async function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    // The servers first, the database last.
    for (const child of [...children].reverse()) await stopChild(child).catch(() => undefined);
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Ctrl-C or a SIGTERM stops everything the run started, then exits 130. */
export function stopOnSignals() {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      interrupted = true;
      log(`${signal}: stopping everything`);
      cleanup().finally(() => process.exit(130));
    });
  }
}

export const wasInterrupted = () => interrupted;

export function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The match of the first line of the child's stdout that matches `pattern`. */
export function firstLine(child, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk.toString();
      for (const line of buffer.split('\n')) {
        const match = pattern.exec(line);
        if (match) {
          child.proc.stdout.off('data', onData);
          clearTimeout(timer);
          resolve(match);
          return;
        }
      }
    };
    const timer = setTimeout(
      () =>
        reject(
          new Error(`${child.name} did not start in ${timeoutMs} ms:\n${tail(child.logFile)}`),
        ),
      timeoutMs,
    );
    child.proc.stdout.on('data', onData);
    child.proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`${child.name} exited (${code}) before it was ready:\n${tail(child.logFile)}`),
      );
    });
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** GET /ready once; resolves with the status code, or 0 when nothing answers. */
function readyStatus(port) {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/ready', agent: false, timeout: 1_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
  });
}

/** ms from `started` until GET /ready answers 200. */
export async function waitReady(child, port, started, timeoutMs = 60_000) {
  for (;;) {
    if (child.exited)
      throw new Error(
        `${child.name} exited (${child.exitCode ?? child.exitSignal}):\n${tail(child.logFile)}`,
      );
    if ((await readyStatus(port)) === 200) return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(`${child.name} not ready after ${timeoutMs} ms:\n${tail(child.logFile)}`);
    await sleep(10);
  }
}
