/** `npm run test:faults`: the long-running load test (60 s), kept out of `npm test`. */
const base = require('./jest.config');

module.exports = {
  ...base,
  testMatch: ['**/test/load/**/*.test.ts'],
  testPathIgnorePatterns: [],
  collectCoverage: false,
  coverageThreshold: undefined,
  testTimeout: 180_000,
};
