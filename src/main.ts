import 'reflect-metadata';
import { runEntryPoint } from './entry-point';
import { serve } from './serve';

/** Process entry: see serve.ts. */
runEntryPoint('wallet-service start-up', serve);
