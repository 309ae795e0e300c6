import type { RequestHandler } from 'express';
import type { Logger } from '../core/logger';
import { metrics } from '../core/metrics';

/**
 * The largest answer /graphql sends. The cost limit and the per-request item budget bound an
 * answer while it is built; this is the last line, on the text itself: an answer over the limit is
 * replaced by an error (BAD_USER_INPUT, naming the limit), so no client is sent, and no proxy
 * buffers, more than maxBytes.
 */
export function capResponses(maxBytes: number, logger: Logger): RequestHandler {
  const replacement = JSON.stringify({
    data: null,
    errors: [
      {
        message: `the answer is over the limit of ${maxBytes} bytes: ask for smaller pages or fewer fields`,
        extensions: { code: 'BAD_USER_INPUT', limit: maxBytes },
      },
    ],
  });
  return (_req, res, next) => {
    const send = res.send.bind(res);
    // @as-integrations/express5 sends Apollo's answer as one string through res.send.
    res.send = (body?: unknown) => {
      if (typeof body !== 'string' || !isOver(body, maxBytes)) return send(body);
      logger.warn(
        { requestId: res.locals.requestId as string, chars: body.length, limit: maxBytes },
        'answer over the size limit replaced by an error',
      );
      metrics.graphqlErrors.inc({ code: 'BAD_USER_INPUT' });
      return send(replacement);
    };
    next();
  };
}

/** Byte length without encoding the text when its length alone decides (1 to 3 bytes a char). */
function isOver(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return Buffer.byteLength(text) > maxBytes;
}
