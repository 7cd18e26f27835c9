/**
 * Single-event trigger: every matching event fires. Repeats for the same
 * group are folded into the open alert by the engine's de-duplication, so a
 * flood of alarms is one alert with a count, not a flood of alerts.
 */
import type { SingleRule } from '../../rules/schema.ts';
import { quote, type Detector, type Observation } from '../detector.ts';
import type { EventView } from '../fields.ts';

export function singleDetector(rule: SingleRule): Detector<null> {
  return {
    idleMs: rule.idle ?? 0,
    stateful: false,
    create: () => null,
    observe(_s, e: EventView): Observation {
      const r = e.r;
      const target = r.rawPath ?? r.path;
      const where = r.method && target ? `: ${r.method} ${quote(target)}` : '';
      const what = r.type === 'request' ? r.reason : `${r.type} ${r.reason}`;
      return { count: 1, firstSeen: e.t, evidence: [r.id], summary: `${what}${where}` };
    },
    save: () => null,
    load: () => null,
  };
}
