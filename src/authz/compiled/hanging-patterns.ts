/**
 * Finds policy patterns that would hang casbin. keyMatch2 rewrites `/:name`
 * and keyMatch3/4/5 rewrite `/{name}` in a `while (pattern includes marker)`
 * loop; a marker the rewrite cannot consume (`/api/:/x`, `/a/{` without `}`)
 * makes the loop spin forever on the first request that reaches the rule,
 * blocking the whole process. That is no decision at all, so such a policy
 * is a load error for every engine rather than something to reproduce.
 */
import type { ModelDefinition } from '../model-text.ts';
import type { PolicyLine } from '../policy-text.ts';
import { PatternError, keyMatch2Source, keyMatch3Source } from './operators.ts';

const STRINGS = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g;
const CALL = /(?:^|[^\w$.])(keyMatch[2345])\s*\(\s*[^,()]*,\s*p\.([A-Za-z_]\w*)\s*[,)]/g;

/** The first `p` line whose pattern would make casbin loop forever, with the reason. */
export function findHangingPattern(model: ModelDefinition, lines: readonly PolicyLine[]): { line: PolicyLine; reason: string } | undefined {
  const columns = model.policyTypes.get('p');
  if (!columns) return undefined;
  const code = model.matcher.replace(STRINGS, '""');
  for (const [, fn, column] of code.matchAll(CALL)) {
    const at = columns.indexOf(column!);
    if (at === -1) continue;
    const source = fn === 'keyMatch2' ? keyMatch2Source : keyMatch3Source;
    for (const l of lines) {
      if (l.ptype !== 'p') continue;
      try {
        source(l.values[at]!);
      } catch (e) {
        if (e instanceof PatternError && e.hangs) return { line: l, reason: e.message.replace('keyMatch3', fn!) };
        throw e;
      }
    }
  }
  return undefined;
}
