/**
 * Alerts in the pino log at warn level. Only alert fields go in — never the
 * audit events behind them — so no token hash, header or claim reaches the log.
 */
import type { Logger } from '../../core/log.ts';
import type { Alert } from '../types.ts';
import type { AlertSink } from './sink.ts';

/** An AlertSink writing one warn line per alert emission. */
export function createLogSink(logger: Logger): AlertSink {
  return {
    name: 'log',
    emit(alert: Alert): void {
      try {
        logger.warn({
          alert: {
            id: alert.id, rule: alert.rule, severity: alert.severity, scope: alert.scope, value: alert.value,
            count: alert.count, firstSeen: alert.firstSeen, lastSeen: alert.lastSeen,
            evidence: alert.evidence.length, ...(alert.decisionId === undefined ? {} : { decisionId: alert.decisionId }),
          },
        }, `alert ${alert.rule}: ${alert.summary}`);
      } catch {
        // A logging failure must not stop analysis.
      }
    },
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
