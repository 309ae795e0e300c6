// Output: the table and PASS/FAIL per target on stdout, the whole record in
// bench/results/latest.json (partial.json for a run with --only).

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from './processes.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function printTable(results, settings) {
  const rows = [];
  const commands = results.commands;
  const fmt = (v, d = 1) => (v == null ? '-' : Number(v).toFixed(d));
  for (const [scenario, row] of Object.entries(results.scenarios)) {
    for (const name of ['service', 'floor']) {
      const r = row[name];
      if (!r) continue;
      rows.push([
        name === 'service' ? scenario : '',
        name,
        fmt(r.rps),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        String(r.errors),
        fmt(commands[name]?.[scenario]?.perRequest, 2),
        fmt(r.cpu?.serverMsPerRequest, 2),
        fmt(r.cpu?.dbMsPerRequest, 2),
        fmt(r.cpu?.otherCores, 2),
        fmt(commands[name]?.[scenario]?.sequential.meanMs, 2),
        fmt(commands[name]?.[scenario]?.sequential.dbMs, 2),
        name === 'floor' && row.ratio != null ? `${fmt(row.ratio * 100)} %` : '',
      ]);
    }
  }
  const head = [
    `scenario (${settings.connections} connections)`,
    'server',
    'req/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'cmds/req',
    'CPU ms/req',
    'DB CPU ms/req',
    'other cores',
    '1-conn ms',
    'of it DB ms',
    'service/floor',
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const out = [
    line(head),
    `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ];
  for (const [scenario, outcome] of Object.entries(results.correctness)) {
    if (outcome?.wrong)
      out.push(
        `| ${scenario} | wrong answers, not measured: ${outcome.wrong.slice(0, 200).replace(/\n/g, ' ')} |`,
      );
  }
  out.push('');
  out.push(
    `service start to /ready: ${results.startup.serviceMs} ms; RSS idle ${results.rss.idleMB} MB, end ${results.rss.endMB} MB; ${settings.rssSeconds} s constant load ${results.rss.constantLoad?.startMB} -> ${results.rss.constantLoad?.endMB} MB (${fmt((results.rss.constantLoad?.growth ?? 0) * 100)} %)`,
  );
  out.push(
    `floor: start ${results.startup.floorMs} ms, RSS idle ${results.rss.floorIdleMB} MB, end ${results.rss.floorEndMB} MB`,
  );
  out.push(
    'CPU ms/req: CPU time of the server (DB CPU: of the database engine) over the phase, per request; other cores: CPU used meanwhile by processes not in the run (should be ~0).',
  );
  out.push(
    "1-conn ms: mean time of one request alone (sequential run); of it DB ms: the database commands' share (proxy to engine and back).",
  );
  results.table = out.join('\n');
  process.stdout.write(`\n${results.table}\n\n`);
  for (const x of results.targets)
    process.stdout.write(`${x.pass ? 'PASS' : 'FAIL'}  ${x.target}: ${x.detail}\n`);
  for (const warning of results.warnings ?? []) process.stdout.write(`WARN  ${warning}\n`);
  process.stdout.write(
    `\n${results.pass ? 'PASS' : 'FAIL'}: ${results.targets.filter((x) => x.pass).length} of ${results.targets.length} targets met\n`,
  );
}

export function writeResults(results, name) {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  log(`wrote ${file}`);
}
