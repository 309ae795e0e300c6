import type { coinbase } from 'ccxt';
import type { ExchangeProfile } from './ccxt.connector';
import { UnexpectedAnswerError } from './failures';
import { isRecord } from './hosts';

/**
 * Coinbase Advanced: ccxt's fetchBalance is the signed GET /v2/accounts (a CDP key signs a
 * JWT per request with its EC private key, the PEM secret); GET /api/v3/brokerage/key_permissions
 * tells whether the key can view, trade and transfer (move funds out). It says nothing of IPs.
 */
export const coinbaseProfile: ExchangeProfile = {
  async permissions({ exchange, within }) {
    const answer: unknown = await within(
      (exchange as coinbase).v3PrivateGetBrokerageKeyPermissions(),
    );
    if (!isRecord(answer) || typeof answer.can_transfer !== 'boolean')
      throw new UnexpectedAnswerError();
    const flag = (value: unknown) => (typeof value === 'boolean' ? value : null);
    return {
      read: flag(answer.can_view),
      trade: flag(answer.can_trade),
      withdraw: answer.can_transfer,
      ipRestricted: null,
    };
  },
};
