#!/usr/bin/env node
// What the tests need from outside npm, set up on the first `npm test` and reused after (as
// mongodb-memory-server keeps its binary):
//   - the pinned Python tools (clients/python/requirements-dev.txt and the client itself) in a
//     project-local virtual environment, .venv/, made again when the pins change;
//   - Chromium for the GraphiQL browser tests: CHROME_PATH or the PATH; otherwise apt-get when
//     running as root; otherwise the one command to run, and a failed run.
// `--python` sets up the Python tools only (npm run client:python).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const VENV = join(ROOT, '.venv');
const VENV_PYTHON = join(VENV, 'bin', 'python');
const STAMP = join(VENV, '.wallet-service-pins');
const CLIENT = join(ROOT, 'clients', 'python');
const REQUIREMENTS = join(CLIENT, 'requirements-dev.txt');

function say(message) {
  process.stderr.write(`test-setup: ${message}\n`);
}

function fail(message) {
  say(message);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', ...options });
  if (result.error) fail(`${command} could not run: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} failed (exit ${result.status})`);
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

// The pins and the client's own package description: what the environment was made from.
function pins() {
  const hash = createHash('sha256');
  for (const file of [REQUIREMENTS, join(CLIENT, 'pyproject.toml')])
    if (existsSync(file)) hash.update(readFileSync(file));
  return hash.digest('hex');
}

function python() {
  const wanted = pins();
  if (existsSync(VENV_PYTHON) && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === wanted)
    return;
  const python3 = onPath('python3');
  if (!python3) fail('python3 is needed for the Python client and the Fernet interop tests');
  say('making .venv/ with the pinned Python tools (first run, or the pins changed)');
  rmSync(VENV, { recursive: true, force: true });
  const made = spawnSync(python3, ['-m', 'venv', VENV], { cwd: ROOT, stdio: 'inherit' });
  if (made.status !== 0) {
    if (!isRoot() || !onPath('apt-get'))
      fail('python3 cannot make a virtual environment: run `sudo apt-get install -y python3-venv`');
    run('apt-get', ['install', '-y', '-qq', 'python3-venv'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    run(python3, ['-m', 'venv', VENV]);
  }
  const pip = [VENV_PYTHON, '-m', 'pip', '--disable-pip-version-check', 'install', '--quiet'];
  // cryptography: test/fernet.test.ts checks our tokens against Python's Fernet.
  run(pip[0], [...pip.slice(1), '-r', REQUIREMENTS, 'cryptography']);
  // Editable: the tests always import this tree's client, however often it is regenerated.
  run(pip[0], [...pip.slice(1), '--editable', CLIENT]);
  writeFileSync(STAMP, wanted);
}

function chromium() {
  const given = process.env.CHROME_PATH;
  if (given) {
    if (!existsSync(given)) fail(`CHROME_PATH names ${given}, which does not exist`);
    return;
  }
  if (['chromium', 'chromium-browser', 'google-chrome'].some(onPath)) return;
  const command = 'sudo apt-get install -y chromium';
  if (!isRoot() || !onPath('apt-get'))
    fail(
      `Chromium is needed for the GraphiQL browser tests: run \`${command}\` (or set CHROME_PATH)`,
    );
  say('installing Chromium with apt-get (first run)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', 'chromium'], { env });
  if (!onPath('chromium')) fail(`Chromium did not install: run \`${command}\``);
}

python();
if (!process.argv.includes('--python')) chromium();
// Quiet when there was nothing to do: npm test prints enough.
execFileSync(VENV_PYTHON, ['-c', 'import ariadne_codegen, cryptography, pytest']);
