import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The built entry points (dist/), run as a newcomer or a deployment runs them. */
export const ROOT = join(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

export interface Running {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

export function run(script: string, env: Record<string, string>): Running {
  if (!existsSync(join(DIST, script)))
    throw new Error(`dist/${script} is missing: npm test builds it first (npm run build)`);
  const child = spawn(process.execPath, [join(DIST, script)], {
    cwd: ROOT,
    // Only what the service needs: nothing of the test run's own MONGODB_URI leaks in.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.on('data', (chunk: Buffer) =>
    stdout.push(...chunk.toString().split('\n').filter(Boolean)),
  );
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, stdout, stderr, exited };
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 90_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function listeningUrl(running: Running): string | undefined {
  for (const line of running.stdout) {
    if (line.includes('wallet service listening'))
      return (JSON.parse(line) as { url: string }).url.replace(/\/graphql$/, '');
  }
  return undefined;
}

/**
 * Another instance of the service on the given environment (a database shared with the test's,
 * say).
 */
export async function startInstance(
  env: Record<string, string | undefined>,
): Promise<{ url: string; running: Running; stop(): Promise<void> }> {
  const defined = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const running = run('main.js', { ...defined, PORT: '0', LOG_LEVEL: 'info' });
  const url = await Promise.race([
    waitFor('the instance to listen', () => listeningUrl(running)),
    running.exited.then((code) =>
      Promise.reject(
        new Error(
          `the instance exited with ${code}: ${running.stderr.join('')}${running.stdout.join('\n')}`,
        ),
      ),
    ),
  ]);
  return {
    url,
    running,
    stop: async () => {
      running.child.kill('SIGTERM');
      await running.exited;
    },
  };
}
