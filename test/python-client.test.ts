import { execFileSync, spawnSync } from 'node:child_process';
import { PYTHON } from './helpers/python';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..');
const CLIENT = join(ROOT, 'clients', 'python');
const COMMITTED = join(CLIENT, 'wallet_service_client');
const GENERATED_PACKAGES = ['sync', 'aio'];

/**
 * Every file under dir, by its path relative to dir, with its content (bytecode caches left out).
 */
function tree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile() || path.includes('__pycache__')) continue;
    files[relative(dir, path)] = readFileSync(path, 'utf8');
  }
  return files;
}

describe('the Python client (clients/python)', () => {
  let out: string;
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'wallet-python-client-'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('is what ariadne-codegen generates from the schema and its queries (run `npm run client:python`)', () => {
    // generate.py refuses to run without the pinned ariadne-codegen and ruff, and says how to
    // install them.
    const run = spawnSync(PYTHON, [join(CLIENT, 'generate.py'), '--out', out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (run.error)
      throw new Error(`${PYTHON} could not run clients/python/generate.py: ${run.error.message}`);
    if (run.status !== 0) {
      throw new Error(
        `clients/python/generate.py failed (${run.status}); npm test makes .venv/ with what it ` +
          `needs (node scripts/test-setup.mjs):\n${run.stderr}`,
      );
    }
    for (const name of GENERATED_PACKAGES) {
      const generated = tree(join(out, name));
      expect(Object.keys(generated)).toContain('client.py');
      expect(tree(join(COMMITTED, name))).toEqual(generated);
    }
  });

  it('is committed, generated packages included', () => {
    const listed = execFileSync('git', ['ls-files', 'clients/python'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).split('\n');
    for (const path of [
      'pyproject.toml',
      'requirements-dev.txt',
      'generate.py',
      'wallet_service_client/errors.py',
    ]) {
      expect(listed).toContain(`clients/python/${path}`);
    }
    for (const name of GENERATED_PACKAGES) {
      for (const file of Object.keys(tree(join(COMMITTED, name)))) {
        expect(listed).toContain(`clients/python/wallet_service_client/${name}/${file}`);
      }
    }
  });
});
