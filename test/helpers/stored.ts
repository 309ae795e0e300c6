import type { Types } from 'mongoose';

/*
 * The fields tests read of documents as MongoDB holds them (the models' snake_case names), for
 * `db.collection<T>(name)`, whose documents are otherwise `any` in every field. Only what some
 * test reads: the tests assert the values, these types only name them.
 */

export type StoredCredential = {
  _id: Types.ObjectId;
  name: string;
  environment: string;
  /** Field key to value: a Fernet token for a secret field, the value itself for the others. */
  credentials: Record<string, string>;
  next_check_at: Date | null;
  check_failures: number;
};

export type StoredWalletEvent = {
  _id: Types.ObjectId;
  wallet_id: Types.ObjectId;
  kind: string;
  actor: string;
  actor_id: Types.ObjectId;
  actor_role: string;
  version: number;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  at: Date;
};

export type StoredWallet = {
  _id: Types.ObjectId;
  wallet_id: Types.ObjectId;
  credential_id: Types.ObjectId;
  name: string;
  status: string;
  version: number;
  user_limits: { max_total_risk: number; trading_mode: string };
  ai_managed_state: {
    current_max_position_size: number;
    current_leverage: number;
    adaptive_stop_loss: number;
    risk_score: number;
    confidence_level: number;
    current_risk: number;
    open_positions: number;
    daily_pnl: number;
  };
  /** The audit outbox: events not yet moved to user_wallet_events. */
  pending_events: StoredWalletEvent[];
  /** The last events moved from the outbox to user_wallet_events. */
  recent_trail?: Array<{
    _id: Types.ObjectId;
    version: number | null;
    at: Date;
    pulled_at: Date;
  }>;
  updated_at: Date;
  user_changed_at?: Date;
};

export type StoredDefinition = {
  slug: string;
  name: string;
  features: { leverage: { min: number; max: number } };
  api_config: { rate_limit: number };
  auth_fields: unknown[];
};

export type StoredUser = { email: string; role: string };

/** A projection of any collection to its names (not every collection's documents have one). */
export type StoredName = { name?: string | null };
