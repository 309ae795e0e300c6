/**
 * Work the service does by itself, not for a request (the agent-token refresh, the connection
 * tests it schedules, the expiry of old documents), sends its database commands with a comment
 * that starts with this, so a count of the commands a request sends (test/dataloader.test.ts,
 * bench/db-proxy.mjs) can leave them out.
 */
export const BACKGROUND_PREFIX = 'background:';

export function backgroundComment(what: string): string {
  return `${BACKGROUND_PREFIX} ${what}`;
}

export function isBackgroundComment(comment: unknown): boolean {
  return typeof comment === 'string' && comment.startsWith(BACKGROUND_PREFIX);
}
