// The load generator's parent side: bench/load.mjs runs in a child process (fork, IPC), so the
// load never shares an event loop with the process that supervises the run.

import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './processes.mjs';

const LOAD = join(dirname(fileURLToPath(import.meta.url)), '..', 'load.mjs');

/** { pid, run(spec) -> result }: one autocannon run per call (see bench/load.mjs for specs). */
export function startLoad() {
  const child = fork(LOAD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  let seq = 0;
  const waiting = new Map();
  child.on('message', ({ id, result, error }) => {
    const waiter = waiting.get(id);
    waiting.delete(id);
    if (error) waiter?.reject(new Error(`load: ${error}`));
    else waiter?.resolve(result);
  });
  child.on('exit', (code) => {
    for (const waiter of waiting.values())
      waiter.reject(new Error(`the load process exited (${code})`));
    waiting.clear();
  });
  track({
    name: 'load',
    proc: child,
    get exited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
  });
  return {
    pid: child.pid,
    run(spec) {
      const id = ++seq;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.send({ id, spec });
      });
    },
  };
}
