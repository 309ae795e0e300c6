import 'reflect-metadata';
import { join } from 'node:path';
import { emitSchema } from './graphql/schema';

/** `npm run schema`: writes schema/schema.graphql from the type-graphql classes. */
emitSchema(join(__dirname, '..', 'schema', 'schema.graphql')).catch((error) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
