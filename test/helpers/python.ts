import { spawnSync } from 'node:child_process';

/** Runs a Python snippet with the given stdin; throws with Python's stderr when it fails. */
export function python(code: string, input = ''): string {
  const run = spawnSync('python3', ['-c', code], { input, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`python3 failed (${run.status}): ${run.stderr}`);
  return run.stdout;
}
