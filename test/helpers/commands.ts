import mongoose from 'mongoose';
import type { CommandStartedEvent } from 'mongodb';
import { BACKGROUND_COMMENT } from '../../src/auth/agent-token-registry';

/** The database commands the service sends while `run` runs (handshakes and pings aside), as "find users". */
export async function commandsFor(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (event: CommandStartedEvent) => {
    // The agent-token registry's refresh runs every 2 s, whatever the requests.
    if (event.command.comment === BACKGROUND_COMMENT) return;
    if (!['hello', 'isMaster', 'ping', 'endSessions'].includes(event.commandName)) seen.push(`${event.commandName} ${String(event.command[event.commandName])}`);
  };
  const client = mongoose.connection.getClient();
  client.on('commandStarted', listener);
  try {
    await run();
  } finally {
    client.off('commandStarted', listener);
  }
  return seen;
}
