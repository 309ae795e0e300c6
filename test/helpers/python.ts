import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The project's Python: .venv/, which `npm test` makes with the pinned tools on its first run
 * (scripts/test-setup.mjs); python3 outside it.
 */
export const PYTHON = ((venv) => (existsSync(venv) ? venv : 'python3'))(
  join(__dirname, '..', '..', '.venv', 'bin', 'python'),
);

/** Runs a Python snippet with the given stdin; throws with Python's stderr when it fails. */
export function python(code: string, input = ''): string {
  const run = spawnSync(PYTHON, ['-c', code], { input, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`python failed (${run.status}): ${run.stderr}`);
  return run.stdout;
}
