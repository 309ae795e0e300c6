// The service's own code the benchmark uses, from dist/ (npm run bench builds it first): one place
// for the paths into the build.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const { Keyring } = require('../../dist/crypto/keyring.js');
