// The run's set-up (1-4 of run.mjs): the database, its data, the servers, the load generator and
// the tokens; and the record the run fills in.

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { startDatabase } from './database.mjs';
import { log, makeTmpDir } from './processes.mjs';
import { seed } from './seed.mjs';
import { serviceEnvironment, startFloor, startProxies, startService } from './servers.mjs';
import { agentToken, configOf, userToken } from './service-code.mjs';
import { SETTINGS, THRESHOLDS } from './settings.mjs';
import { startLoad } from './workers.mjs';

/** The record of a run (bench/results/*.json); `only`: the scenarios of a partial run. */
export function newResults(only) {
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
    },
    settings: SETTINGS,
    // A partial run's scenarios (--only); absent in a full run.
    ...(only ? { only } : {}),
    thresholds: THRESHOLDS,
    database: {},
    startup: {},
    rss: {},
    correctness: {},
    commands: {},
    scenarios: {},
    targets: [],
  };
}

/** 1-4: the database, its data, the servers, the load generator and the tokens. */
export async function setUp(state) {
  const env = process.env;
  state.tmpDir = makeTmpDir();
  state.keys = {
    jwtSecret: randomBytes(48).toString('base64url'),
    encryptionKey: `${randomBytes(32).toString('base64url')}=`,
  };
  state.baseEnv = {
    PATH: env.PATH,
    HOME: env.HOME ?? state.tmpDir,
    LANG: env.LANG ?? 'C.UTF-8',
    ...(env.JAVA_HOME ? { JAVA_HOME: env.JAVA_HOME } : {}),
  };
  state.serviceEnv = serviceEnvironment(state);
  state.config = configOf(state.serviceEnv, state.tmpDir);
  state.db = await startDatabase(state);

  log('seeding');
  const fixtures = await seed({ db: state.db.direct, uri: state.db.uri, config: state.config });
  state.fixtures = fixtures;
  state.results.database.seed = {
    ...fixtures.counts,
    seconds: fixtures.seconds,
    listUsers: [10, 100, 1_000],
    oneWalletUsers: SETTINGS.oneWalletUsers,
    writePool: SETTINGS.writePool,
  };
  log(`seeded ${JSON.stringify(fixtures.counts)} in ${fixtures.seconds} s`);

  const proxies = await startProxies(state);
  state.counters = [proxies.service.counter, proxies.floor.counter];
  state.service = await startService(state, proxies.service);
  state.floor = await startFloor(state, proxies.floor);
  state.serverPids = [state.service.child.proc.pid, state.floor.child.proc.pid];
  state.load = startLoad();

  // Signed by the service's own code with its Config, as login and issueAgentToken sign them.
  state.tokens = {
    admin: userToken(state.config, fixtures.admin),
    list: Object.fromEntries(
      Object.entries(fixtures.listUsers).map(([size, user]) => [
        size,
        userToken(state.config, user),
      ]),
    ),
    agent: agentToken(state.config, fixtures.agentToken),
  };
}
