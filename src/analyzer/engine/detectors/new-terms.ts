/**
 * New terms (Elastic's rule type): a value — or a tuple of values, e.g.
 * (method, path shape) — never seen for the group fires, once the group has
 * been learnt. Learning is per group: the first `learning` of each
 * identity's life only records what it does, so a workload that appears
 * mid-run (a new deployment, a batch job) is learnt, not flagged.
 *
 * `relearnOn` makes deploys quiet: a new value of that field for the group
 * (a certificate never seen for this SPIFFE ID: new pods, i.e. a rollout)
 * opens a `relearn` period in which new terms are learnt instead of fired.
 * The trade-off is documented in docs/detections.md: an attacker who gets a
 * fresh certificate for an existing identity has that period of quiet.
 */
import type { NewTermsRule } from '../../rules/schema.ts';
import { fmtDuration, quote, type Detector, type Observation } from '../detector.ts';
import { ACCESSORS, type EventView } from '../fields.ts';

interface TermsState {
  first: number;
  last: number;
  terms: Set<string>;
  /** Recently seen values of relearnOn (bounded), and the end of the current relearning period. */
  known: string[];
  relearnUntil: number;
}

/** How many relearnOn values (e.g. replica certificates) a group remembers. */
const KNOWN_MAX = 64;
const SEP = '\u001f';

export function newTermsDetector(rule: NewTermsRule): Detector<TermsState> {
  const getters = rule.fields.map((f) => ACCESSORS[f]);
  const relearnOn = rule.relearnOn === undefined ? undefined : ACCESSORS[rule.relearnOn];
  const relearn = rule.relearn ?? 15 * 60_000;
  const label = rule.fields.join('+');
  return {
    // Forgetting a group means learning it again (quiet), never a false alarm.
    idleMs: rule.idle ?? 7 * 86_400_000,
    stateful: true,
    create: (e) => ({ first: e.t, last: e.t, terms: new Set(), known: [], relearnUntil: 0 }),
    observe(s, e: EventView): Observation {
      const t = Math.max(e.t, s.last);
      s.last = t;
      let term = '';
      for (let i = 0; i < getters.length; i++) {
        const v = (getters[i] as (e: EventView) => unknown)(e);
        if (v === null) return false;
        term = i === 0 ? String(v) : `${term}${SEP}${String(v)}`;
      }
      if (relearnOn) {
        const v = relearnOn(e);
        if (v !== null) {
          const k = String(v);
          if (!s.known.includes(k)) {
            // The first value is the group's birth (covered by `learning`); later ones are rollouts.
            if (s.known.length > 0) s.relearnUntil = t + relearn;
            s.known.push(k);
            if (s.known.length > KNOWN_MAX) s.known.shift();
          }
        }
      }
      if (s.terms.has(term)) return false;
      if (s.terms.size >= rule.maxTerms) {
        // Bounded memory: forget the oldest term (it may fire again later, which is the safe side).
        const oldest = s.terms.values().next().value as string;
        s.terms.delete(oldest);
      }
      s.terms.add(term);
      if (t < s.first + rule.learning || t < s.relearnUntil) return false;
      return {
        count: 1,
        firstSeen: e.t,
        evidence: [e.r.id],
        summary: `first ${label} ${quote(term.split(SEP).join(' '))} for this identity (learnt for ${fmtDuration(t - s.first)})`,
      };
    },
    save: (s) => ({ first: s.first, last: s.last, terms: [...s.terms], known: s.known.slice(), relearnUntil: s.relearnUntil }),
    load: (v) => {
      const o = v as { first: number; last: number; terms: string[]; known: string[]; relearnUntil: number };
      return { first: o.first, last: o.last, terms: new Set(o.terms), known: [...o.known], relearnUntil: o.relearnUntil };
    },
  };
}
