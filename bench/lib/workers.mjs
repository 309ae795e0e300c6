// The child processes the run sends work to (fork, IPC), so their sockets never share an event
// loop with the process that supervises the run: one request per message,
//   parent -> { id, spec }    child -> { id, result } | { id, error }

import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './processes.mjs';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * { pid, run(spec) -> result, stop() }: `file` (in bench/) forked, stopped at cleanup like the
 * others unless stopped before (a child exits when its IPC channel closes).
 */
function startWorker(name, file) {
  const child = fork(join(BENCH, file), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  let seq = 0;
  const waiting = new Map();
  child.on('message', ({ id, result, error }) => {
    const waiter = waiting.get(id);
    waiting.delete(id);
    if (error) waiter?.reject(new Error(`${name}: ${error}`));
    else waiter?.resolve(result);
  });
  child.on('exit', (code) => {
    for (const waiter of waiting.values())
      waiter.reject(new Error(`the ${name} process exited (${code})`));
    waiting.clear();
  });
  track({
    name,
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
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      return exited;
    },
  };
}

/** The load generator (bench/load.mjs): one autocannon run per call (see there for specs). */
export const startLoad = () => startWorker('load', 'load.mjs');

/** The users' frontends of the 10,000-subscriber scenario (bench/subscribers.mjs). */
export const startSubscribers = () => startWorker('subscribers', 'subscribers.mjs');
