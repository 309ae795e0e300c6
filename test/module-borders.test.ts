import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

const MODULES = join(__dirname, '..', 'src', 'modules');

function sourcesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesOf(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** `import { a, type B } from '…'` and `export { a } from '…'`. */
const NAMED = /(?:import|export)\s+(type\s+)?\{([^}]*)\}\s+from\s+'([^']+)'/g;
/**
 * Whole-module imports, whose names this test does not follow: a default or namespace import (with
 * or without named ones beside it), `export * from`, require() and import(). Each counts as a value
 * import of everything the file exports.
 */
const WHOLE =
  /import\s+(?!type\b)(?:\*\s+as\s+\w+|\w+)(?:\s*,\s*\{[^}]*\})?\s+from\s+'([^']+)'|export\s+\*(?:\s+as\s+\w+)?\s+from\s+'([^']+)'|require\(\s*'([^']+)'\s*\)|import\(\s*'([^']+)'\s*\)/g;
const EVERYTHING = '*';

interface ValueImport {
  from: string;
  module: string | null;
  /** The names taken, or EVERYTHING. */
  names: string[];
}

function moduleOf(file: string, from: string): string | null {
  const target = relative(MODULES, resolve(join(file, '..'), from));
  return target.startsWith('..') ? null : target.split(sep)[0];
}

/** Every value (not type-only) import of a file, with the module folder it comes from. */
function valueImports(file: string): ValueImport[] {
  const text = readFileSync(file, 'utf8');
  const found: ValueImport[] = [];
  for (const [, typeOnly, list, from] of text.matchAll(NAMED)) {
    if (typeOnly || !from.startsWith('.')) continue;
    const names = list
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name && !name.startsWith('type '))
      .map((name) => name.split(/\s+as\s+/)[0]);
    found.push({ from, module: moduleOf(file, from), names });
  }
  for (const match of text.matchAll(WHOLE)) {
    const from = match.slice(1).find((group) => group !== undefined)!;
    if (!from.startsWith('.')) continue;
    found.push({ from, module: moduleOf(file, from), names: [EVERYTHING] });
  }
  return found;
}

/** The models a value import takes: by name, or all of a model file taken whole. */
function modelsOf(use: ValueImport): string[] {
  if (use.names.includes(EVERYTHING)) return /\.model(\.js)?$/.test(use.from) ? [EVERYTHING] : [];
  return use.names.filter((name) => /Model$/.test(name));
}

describe('module borders', () => {
  it("no module reads another module's collections through its model: it asks that module's service", () => {
    const crossings: string[] = [];
    for (const module of readdirSync(MODULES)) {
      for (const file of sourcesOf(join(MODULES, module))) {
        for (const use of valueImports(file)) {
          if (use.module === null || use.module === module) continue;
          const models = modelsOf(use);
          if (models.length > 0)
            crossings.push(`${relative(MODULES, file)} -> ${use.from}: ${models.join(', ')}`);
        }
      }
    }
    expect(crossings).toEqual([]);
  });

  it('value imports between modules go one way: no module reaches, through others, back to itself', () => {
    // module -> the modules it imports values from, each with a file that does
    const edges = new Map<string, Map<string, string>>();
    for (const module of readdirSync(MODULES)) {
      const targets = new Map<string, string>();
      for (const file of sourcesOf(join(MODULES, module))) {
        for (const use of valueImports(file)) {
          if (use.module === null || use.module === module || use.names.length === 0) continue;
          if (!targets.has(use.module)) targets.set(use.module, relative(MODULES, file));
        }
      }
      edges.set(module, targets);
    }
    const cycles: string[] = [];
    const done = new Set<string>();
    const visit = (module: string, path: string[]): void => {
      const at = path.indexOf(module);
      if (at >= 0) {
        const cycle = [...path.slice(at), module];
        cycles.push(
          cycle
            .slice(1)
            .map((to, i) => `${cycle[i]} -> ${to} (${edges.get(cycle[i])!.get(to)})`)
            .join(', '),
        );
        return;
      }
      if (done.has(module)) return;
      for (const next of edges.get(module)?.keys() ?? []) visit(next, [...path, module]);
      done.add(module);
    };
    for (const module of edges.keys()) visit(module, []);
    expect(cycles).toEqual([]);
  });
});
