// What Linux's /proc says about the processes of the run: memory and CPU time.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** VmRSS of a process, in MB (Linux /proc). */
export function rssMB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

const CLOCK_TICKS = 100; // USER_HZ: the unit of utime/stime in /proc/<pid>/stat on Linux

/** [ppid, cpu seconds (user + system)] of a process from /proc/<pid>/stat; null when it is gone. */
function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
    };
  } catch {
    return null;
  }
}

/** A process and all its descendants (the engine is node db-cli plus its JVM). */
export function processTree(root) {
  const parentOf = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat) parentOf.set(Number(entry), stat.ppid);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

export const cpuOf = (pids) => pids.reduce((sum, pid) => sum + (procStat(pid)?.cpuSeconds ?? 0), 0);

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
export function machineBusySeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

/**
 * Which of `pids` holds the client end of a TCP connection on 127.0.0.1 from `clientPort` to
 * `serverPort` (its inode in /proc/net/tcp, then the process with that socket open), or null: who
 * is at the other end of a connection a server in this process accepted.
 */
export function tcpClientPid(clientPort, serverPort, pids) {
  const port = (p) => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  // sl, local_address, rem_address, st, tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, inode
  const fields = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(port(clientPort)) && f[2]?.endsWith(port(serverPort)));
  if (!fields) return null;
  const socket = `socket:[${fields[9]}]`;
  for (const pid of pids) {
    let fds;
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (error) {
      if (error.code === 'ENOENT') continue; // the process is gone
      throw error;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === socket) return pid;
      } catch (error) {
        if (error.code !== 'ENOENT') throw error; // closed meanwhile
      }
    }
  }
  return null;
}
