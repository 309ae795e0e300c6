import mongoose from 'mongoose';
import type { CommandStartedEvent } from 'mongodb';
import { isBackgroundComment } from '../../src/shared/background';

/**
 * The database commands the service sends while `run` runs (handshakes and pings aside), as "find
 * users".
 */
export async function commandsFor(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (event: CommandStartedEvent) => {
    // The service's own work (the agent-token refresh, its connection tests, the event feed, ...)
    // runs whatever the requests.
    if (isBackgroundComment(event.command.comment)) return;
    if (!['hello', 'isMaster', 'ping', 'endSessions'].includes(event.commandName))
      seen.push(`${event.commandName} ${String(event.command[event.commandName])}`);
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
