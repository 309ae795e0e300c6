#!/usr/bin/env node
// Refreshes the project's copy of the public GraphQL contract from ../shared/ (the steering
// repository's folder beside a checkout), when that folder is there: schema/contract/ keeps
// shared/'s layout (api/contract.graphql, api/additions/*.graphql, tools/check-contract.mjs), so
// the check reads the contract beside it. test/schema.test.ts holds the emitted schema to this copy,
// and a clone with nothing beside it passes on its own.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = join(ROOT, '..', 'shared');
const COPY = join(ROOT, 'schema', 'contract');

if (!existsSync(join(SHARED, 'api', 'contract.graphql'))) {
  process.stderr.write(`contract:refresh: no ${SHARED}/api/contract.graphql: nothing to refresh\n`);
  process.exit(1);
}
rmSync(join(COPY, 'api', 'additions'), { recursive: true, force: true });
for (const dir of ['api/additions', 'tools']) mkdirSync(join(COPY, dir), { recursive: true });
const files = [
  'api/contract.graphql',
  'tools/check-contract.mjs',
  ...readdirSync(join(SHARED, 'api', 'additions'))
    .filter((name) => name.endsWith('.graphql'))
    .map((name) => `api/additions/${name}`),
];
for (const file of files) copyFileSync(join(SHARED, file), join(COPY, file));
process.stdout.write(
  `contract:refresh: ${files.length} files from ${SHARED} into schema/contract/\n`,
);
