/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The 60 s load test runs with `npm run test:faults` (jest.faults.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/load/'],
  // swc keeps type-graphql's decorator metadata (see .swcrc); `npm test` type-checks with tsc
  // first.
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  setupFiles: ['reflect-metadata'],
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
  collectCoverageFrom: [
    'src/**/*.ts',
    // Process entry points: exercised by spawning them (test/process.test.ts), where jest can't
    // count lines.
    '!src/main.ts',
    '!src/db/db-cli.ts',
    '!src/seed-cli.ts',
    '!src/emit-schema.ts',
  ],
  coverageReporters: ['text-summary', 'text'],
  coverageThreshold: { global: { lines: 80 } },
};
