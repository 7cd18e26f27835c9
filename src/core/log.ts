/** The pino logger type used across meshgate, and a silent default for tests. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { service: 'meshgate' },
    // Belt and braces: these never reach a log line even if a caller passes them.
    redact: { paths: ['token', 'authorization', 'headers.authorization', 'req.headers.authorization', '*.token', 'key', 'password'], censor: '[redacted]' },
  });
}

export const silentLogger: Logger = pino({ level: 'silent' });
