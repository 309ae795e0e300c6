// `npm run bench -- --only <scenario>` (several allowed): the database, the seed and the servers
// start as always, but only the named scenarios are measured and only their targets (and the
// run's own) are judged. A scenario's `compares` (the scenarios its targets compare with) are
// measured along, their targets not judged; its `uses` (the scenarios whose load it sends) have
// their answers checked, and nothing more.

/** The names given with --only (`--only a`, `--only=a`, `--only a,b`), or null for all. */
export function parseOnly(argv, known) {
  const only = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let value;
    if (arg === '--only') value = argv[++i];
    else if (arg.startsWith('--only=')) value = arg.slice('--only='.length);
    else throw new Error(`unknown argument ${arg}: the one argument is --only <scenario>`);
    if (!value) throw new Error(`--only needs a scenario: one of ${known.join(', ')}`);
    only.push(...value.split(',').filter(Boolean));
  }
  const unknown = only.filter((name) => !known.includes(name));
  if (unknown.length)
    throw new Error(
      `unknown scenario ${unknown.join(', ')}: the scenarios are ${known.join(', ')}`,
    );
  return only.length ? [...new Set(only)] : null;
}

/**
 * Which steps run and which targets are judged, for the scenarios named by --only (null: all).
 * `always` is the run's own pseudo-scenario: its steps run and its targets are judged every time.
 */
export function select(scenarios, only, always) {
  const closure = (names, next) => {
    const found = new Set(names);
    for (const name of found) for (const other of next(scenarios[name])) found.add(other);
    return found;
  };
  const judged = new Set([...(only ?? Object.keys(scenarios)), always]);
  const measured = closure(judged, (s) => s.compares ?? []);
  const checked = closure(measured, (s) => [...(s.uses ?? []), ...(s.compares ?? [])]);
  return {
    judged,
    measured,
    checked,
    /** Whether `scenario.step` runs: all of a measured scenario's, a checked one's verify. */
    runs: (scenario, step) =>
      measured.has(scenario) || (step === 'verify' && checked.has(scenario)),
    judges: (scenario) => judged.has(scenario),
  };
}
