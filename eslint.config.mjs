// `npm run lint`: typescript-eslint's type-checked rules on the TypeScript (through tsconfig.json,
// which includes src and test), ESLint's recommended rules on the plain JavaScript, and
// @graphql-eslint on the operations the tests and the Python client send, checked against the
// emitted schema.
import js from '@eslint/js';
import graphqlPlugin from '@graphql-eslint/eslint-plugin';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// As tsc's noUnusedLocals and noUnusedParameters read it: a leading underscore marks a name kept
// on purpose (a parameter a signature needs, a property left out of a rest).
const unusedVars = {
  argsIgnorePattern: '^_',
  varsIgnorePattern: '^_',
  caughtErrorsIgnorePattern: '^_',
  destructuredArrayIgnorePattern: '^_',
};

export default defineConfig(
  globalIgnores([
    'dist/',
    'coverage/',
    '**/node_modules/',
    // Written by `npm run codegen`, `npm run bench` and `npm run client:python`.
    'test/generated/',
    'bench/results/',
    'clients/python/wallet_service_client/',
    '**/.venv/',
    // shared/'s contract check, copied as it is (npm run contract:refresh).
    'schema/contract/',
  ]),
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: { '@typescript-eslint/no-unused-vars': ['error', unusedVars] },
  },
  {
    // Apollo's plugin hooks must return promises (its types say so, and it awaits each one):
    // `async` is what makes them, and turns a throw inside a hook into a rejection Apollo handles.
    files: ['src/graphql/request-plugins.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: { 'no-unused-vars': ['error', unusedVars] },
  },
  {
    // jest's configs are CommonJS (the package has no "type").
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    files: ['test/operations/**/*.graphql', 'clients/python/queries/**/*.graphql'],
    plugins: { '@graphql-eslint': graphqlPlugin },
    rules: {
      ...graphqlPlugin.configs['flat/operations-recommended'].rules,
      // It asks every object selection for its id, which a normalising cache needs to merge
      // objects; neither the tests nor the Python client keep one, and the generated client's
      // types follow its queries field for field.
      '@graphql-eslint/require-selections': 'off',
    },
    languageOptions: {
      parser: graphqlPlugin.parser,
      parserOptions: {
        // Two projects on the one schema: the tests' operations and the Python client's are
        // separate sets of documents (each its own names and fragments).
        graphQLConfig: {
          projects: {
            tests: { schema: 'schema/schema.graphql', documents: 'test/operations/**/*.graphql' },
            python: {
              schema: 'schema/schema.graphql',
              documents: 'clients/python/queries/**/*.graphql',
            },
          },
        },
      },
    },
  },
);
