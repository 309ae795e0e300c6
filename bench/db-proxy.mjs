// A TCP proxy on 127.0.0.1 between one process and the database that counts the commands the
// process sends, without touching its code. It reads the MongoDB wire protocol client -> server
// (each message: a 16-byte header {messageLength, requestID, responseTo, opCode}; OP_MSG 2013:
// 4-byte flagBits, then sections, kind 0 being one BSON document whose first key is the command
// name) and passes every byte through unchanged. Replies are piped back untouched.
//
// Two levels: always, a cheap count by command name (the first key, read in place); on demand
// (`detail(true)`), each command is also labelled with its collection ("find users"), timed from
// the moment the proxy forwards it to the end of the database's reply (matched by responseTo),
// and the first few commands are kept whole, decoded, so the caller can look at a filter.
//
// Handshake and monitoring traffic is not counted: see NOT_COUNTED.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { BSON } from 'mongodb';

const OP_MSG = 2013;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;

/**
 * The service's own background work (the agent-token refresh, its scheduled connection tests, the
 * expiry of old documents) tags its commands with a comment starting with this
 * (src/shared/background.ts): it runs whatever the load, so it is not counted against any request.
 * A command whose comment carries it has the bytes `comment\0`, the string's length, then these.
 */
const BACKGROUND_PREFIX = Buffer.from('background:');

/**
 * Connection handshakes, heartbeats, authentication and session clean-up: not the application's
 * commands.
 */
export const NOT_COUNTED = new Set([
  'hello',
  'ismaster',
  'ping',
  'buildinfo',
  'endsessions',
  'saslstart',
  'saslcontinue',
  'authenticate',
  'getnonce',
  'getparameter',
  'getfreemonitoringstatus',
  'getcmdlineopts',
  'hostinfo',
  'serverstatus',
  'atlasversion',
]);

/** The command document of one client message, or null (a reply, an unknown opCode). */
function commandDocument(msg) {
  const opCode = msg.readInt32LE(12);
  if (opCode === OP_MSG) {
    let offset = 20; // header + flagBits
    const flags = msg.readUInt32LE(16);
    const end = flags & 1 ? msg.length - 4 : msg.length; // checksumPresent
    while (offset < end) {
      const kind = msg[offset];
      if (kind === 0) {
        const size = msg.readInt32LE(offset + 1);
        return { start: offset + 1, size };
      }
      // kind 1: int32 size (itself included), cstring identifier, documents
      offset += 1 + msg.readInt32LE(offset + 1);
    }
    return null;
  }
  if (opCode === OP_QUERY) {
    let offset = 20; // header + flags
    while (msg[offset] !== 0) offset++; // fullCollectionName
    offset += 1 + 8; // NUL, numberToSkip, numberToReturn
    return { start: offset, size: msg.readInt32LE(offset) };
  }
  return null;
}

const COMMENT_KEY = Buffer.from('\x02comment\x00', 'latin1');

/** Whether the message has a string field `comment` whose value starts with BACKGROUND_PREFIX. */
function hasBackgroundComment(msg) {
  for (let at = msg.indexOf(COMMENT_KEY); at !== -1; at = msg.indexOf(COMMENT_KEY, at + 1)) {
    const value = at + COMMENT_KEY.length + 4; // past the int32 length
    if (
      value + BACKGROUND_PREFIX.length <= msg.length &&
      msg.compare(
        BACKGROUND_PREFIX,
        0,
        BACKGROUND_PREFIX.length,
        value,
        value + BACKGROUND_PREFIX.length,
      ) === 0
    )
      return true;
  }
  return false;
}

/** The first key of a BSON document, read in place: type byte at +4, then a cstring. */
function firstKey(msg, start) {
  const nameStart = start + 5;
  let i = nameStart;
  while (msg[i] !== 0) i++;
  return msg.toString('latin1', nameStart, i);
}

export class CommandCounter {
  constructor(name) {
    this.name = name;
    this.byCommand = new Map();
    this.byLabel = new Map();
    this.msByLabel = new Map();
    this.inFlight = new Map();
    this.window = 0;
    this.lastActivity = 0;
    this.total = 0;
    this.ignored = 0;
    this.detailed = false;
    this.captured = [];
    this.captureLimit = 50;
  }

  reset() {
    this.window++;
    this.byCommand.clear();
    this.byLabel.clear();
    this.msByLabel.clear();
    this.total = 0;
    this.ignored = 0;
    this.captured = [];
  }

  /** Labels and keeps whole commands while on (costs a BSON decode per command). */
  detail(on) {
    this.detailed = on;
  }

  snapshot() {
    return {
      total: this.total,
      ignored: this.ignored,
      byCommand: Object.fromEntries(this.byCommand),
      byLabel: Object.fromEntries(this.byLabel),
      msByLabel: Object.fromEntries(
        [...this.msByLabel].map(([k, v]) => [k, Math.round(v * 1000) / 1000]),
      ),
    };
  }

  record(msg) {
    const opCode = msg.readInt32LE(12);
    if (opCode === OP_COMPRESSED) {
      // Compression is off unless asked for in the URI; count it so it cannot hide commands.
      this.total++;
      this.byCommand.set('(compressed)', (this.byCommand.get('(compressed)') ?? 0) + 1);
      return;
    }
    const doc = commandDocument(msg);
    if (!doc) return;
    const command = firstKey(msg, doc.start);
    if (NOT_COUNTED.has(command.toLowerCase()) || hasBackgroundComment(msg)) {
      this.ignored++;
      return;
    }
    this.total++;
    this.lastActivity = performance.now();
    this.byCommand.set(command, (this.byCommand.get(command) ?? 0) + 1);
    let label = null;
    if (this.detailed) {
      const body = BSON.deserialize(msg.subarray(doc.start, doc.start + doc.size), {
        promoteValues: true,
      });
      const target = body[command];
      const collection =
        typeof target === 'string'
          ? target
          : typeof body.collection === 'string'
            ? body.collection
            : '';
      label = collection ? `${command} ${collection}` : command;
      this.byLabel.set(label, (this.byLabel.get(label) ?? 0) + 1);
      if (this.captured.length < this.captureLimit) this.captured.push(body);
    }
    // Always tracked (cheaply), so the caller can wait until nothing is in flight.
    this.inFlight.set(msg.readInt32LE(4), {
      label,
      window: this.window,
      started: this.lastActivity,
    });
  }

  /** The database's reply to `responseTo` has been read whole. */
  replied(responseTo) {
    if (this.inFlight.size === 0) return;
    const sent = this.inFlight.get(responseTo);
    if (!sent) return;
    this.inFlight.delete(responseTo);
    const now = performance.now();
    this.lastActivity = now;
    if (sent.label && sent.window === this.window)
      this.msByLabel.set(sent.label, (this.msByLabel.get(sent.label) ?? 0) + (now - sent.started));
  }

  /** True when no command is waiting for its reply and none was sent or answered for `ms`. */
  isQuiet(ms) {
    const now = performance.now();
    for (const [id, sent] of this.inFlight) {
      // A reply lost with its connection must not keep us waiting forever.
      if (now - sent.started > 30_000) this.inFlight.delete(id);
    }
    return this.inFlight.size === 0 && now - this.lastActivity >= ms;
  }
}

/** Waits until every counter has been quiet for `ms` (at most `maxMs`); false on a timeout. */
export async function waitQuiet(counters, ms = 300, maxMs = 15_000) {
  const started = performance.now();
  while (!counters.every((c) => c.isQuiet(ms))) {
    if (performance.now() - started > maxMs) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/**
 * Listens on 127.0.0.1 (an ephemeral port) and forwards to target {host, port}.
 * Returns { port, counter, close() }.
 */
export async function startDbProxy({ host, port, name = 'proxy' }) {
  const counter = new CommandCounter(name);
  const sockets = new Set();

  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host, port });
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);

    // Client -> server: split the stream into messages to count them, forward every chunk as is.
    let pending = [];
    let pendingBytes = 0;
    const consume = () => {
      while (pendingBytes >= 4) {
        const first = pending[0].length >= 4 ? pending[0] : Buffer.concat(pending);
        const length = first.readInt32LE(0);
        if (pendingBytes < length) return;
        const all = pending.length === 1 ? pending[0] : Buffer.concat(pending);
        const msg = all.subarray(0, length);
        try {
          counter.record(msg);
        } catch {
          // A message the parser does not understand is still forwarded; it just is not counted.
        }
        const rest = all.subarray(length);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
      }
    };
    client.on('data', (chunk) => {
      pending.push(chunk);
      pendingBytes += chunk.length;
      consume();
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    // Server -> client: only the 16-byte headers are read (in place, nothing is copied but a
    // header split across chunks), to see where each reply ends.
    const header = Buffer.alloc(16);
    let headerFill = 0;
    let remaining = 0;
    let replyTo = 0;
    upstream.on('data', (chunk) => {
      let offset = 0;
      while (offset < chunk.length) {
        if (remaining > 0) {
          const take = Math.min(remaining, chunk.length - offset);
          remaining -= take;
          offset += take;
          if (remaining === 0) counter.replied(replyTo);
          continue;
        }
        const take = Math.min(16 - headerFill, chunk.length - offset);
        chunk.copy(header, headerFill, offset, offset + take);
        headerFill += take;
        offset += take;
        if (headerFill === 16) {
          headerFill = 0;
          replyTo = header.readInt32LE(8);
          remaining = header.readInt32LE(0) - 16;
          if (remaining <= 0) counter.replied(replyTo);
        }
      }
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });

    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    counter,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
