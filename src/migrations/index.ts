import { migration as userChangedAt } from './001-user-changed-at';
import { migration as definitionCcxtIds } from './002-definition-ccxt-ids';
import { migration as connectionStates } from './003-connection-states';
import { migration as dropAiWriteIndex } from './004-drop-ai-write-index';
import { migration as agentTokenScopes } from './005-agent-token-scopes';
import type { Migration } from './runner';

/**
 * Every migration, in the order they run (their numbers'). A new one gets the next number and goes
 * at the end. Once released, one is never renumbered or changed: where its record exists, it does
 * not run again.
 */
export const MIGRATIONS: readonly Migration[] = [
  userChangedAt,
  definitionCcxtIds,
  connectionStates,
  dropAiWriteIndex,
  agentTokenScopes,
];
