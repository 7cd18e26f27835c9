/**
 * Parses the subset of Casbin matcher syntax the compiled engine understands:
 * `||`, `&&`, `==`, parentheses, calls `f(a, b[, c])`, `r.token`, `p.column`
 * and double-quoted string literals. Precedence follows jsep, which casbin's
 * expression evaluator uses (`==` over `&&` over `||`). Anything else —
 * other operators, numbers, member chains (`r.obj.Owner`), single-quoted or
 * escaped strings — is reported as unsupported, and the model goes to casbin.
 */

/** A value in the matcher: a request token, a policy column, or a string literal. */
export type Operand =
  | { readonly kind: 'r'; readonly name: string }
  | { readonly kind: 'p'; readonly name: string }
  | { readonly kind: 'lit'; readonly value: string };

/** A boolean expression in the matcher. */
export type MatcherExpr =
  | { readonly kind: 'or' | 'and'; readonly items: readonly MatcherExpr[] }
  | { readonly kind: 'eq'; readonly left: Operand; readonly right: Operand }
  | { readonly kind: 'call'; readonly fn: string; readonly args: readonly Operand[] };

/** Thrown for syntax outside the supported subset; `message` names the construct. */
export class UnsupportedMatcher extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedMatcher';
  }
}

type Token =
  | { readonly t: 'ident'; readonly v: string }
  | { readonly t: 'ref'; readonly v: 'r' | 'p'; readonly name: string }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'op'; readonly v: '&&' | '||' | '==' | '(' | ')' | ',' | '.' };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t') { i++; continue; }
    const two = src.slice(i, i + 2);
    if (two === '&&' || two === '||' || two === '==') {
      if (src[i + 2] === '=') throw new UnsupportedMatcher('operator "==="');
      out.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    if (c === '(' || c === ')' || c === ',' || c === '.') { out.push({ t: 'op', v: c }); i++; continue; }
    if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end === -1) throw new UnsupportedMatcher('unterminated string literal');
      const v = src.slice(i + 1, end);
      // Casbin shields "…" literals from its r./p. rewrite with `$<n>` placeholders and String#replace,
      // which expands `$` sequences; backslashes are jsep escapes. Neither is worth reproducing.
      if (/[\\$]/.test(v)) throw new UnsupportedMatcher(`string literal "${v}" with "\\" or "$"`);
      out.push({ t: 'str', v });
      i = end + 1;
      continue;
    }
    // `r.x` / `p.x` only when written without spaces: that is the form casbin rewrites to `r_x` / `p_x`.
    const ref = /^([rp])\.([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
    if (ref && !/[A-Za-z0-9_]/.test(src[i - 1] ?? '')) {
      out.push({ t: 'ref', v: ref[1] as 'r' | 'p', name: ref[2]! });
      i += ref[0].length;
      continue;
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (ident) { out.push({ t: 'ident', v: ident[0] }); i += ident[0].length; continue; }
    if (c === "'") throw new UnsupportedMatcher('single-quoted string literal');
    const op = /^(!==|!=|>=|<=|[-+*/%!<>&|^~?:[\]0-9])+/.exec(src.slice(i))?.[0] ?? c;
    throw new UnsupportedMatcher(`"${op.slice(0, 3)}" in the matcher`);
  }
  return out;
}

/** Parses a matcher as written in model.conf; throws UnsupportedMatcher outside the subset. */
export function parseMatcher(src: string): MatcherExpr {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isOp = (v: string): boolean => { const t = peek(); return t?.t === 'op' && t.v === v; };
  const expect = (v: string): void => {
    if (!isOp(v)) throw new UnsupportedMatcher(`expected "${v}" at token ${pos + 1}`);
    pos++;
  };

  const operand = (): Operand => {
    const t = peek();
    if (!t) throw new UnsupportedMatcher('unexpected end of matcher');
    if (t.t === 'str') { pos++; return { kind: 'lit', value: t.v }; }
    if (t.t === 'ref') {
      pos++;
      if (isOp('.')) throw new UnsupportedMatcher(`member access ${t.v}.${t.name}.…`);
      if (isOp('(')) throw new UnsupportedMatcher(`method call ${t.v}.${t.name}(…)`);
      return { kind: t.v, name: t.name };
    }
    if (t.t === 'ident') throw new UnsupportedMatcher(`"${t.v}" used as a value (only r.x, p.x and "strings")`);
    throw new UnsupportedMatcher(`"${t.v}" where a value was expected`);
  };

  const primary = (): MatcherExpr => {
    const t = peek();
    if (t?.t === 'op' && t.v === '(') {
      pos++;
      const e = or();
      expect(')');
      return e;
    }
    if (t?.t === 'ident' && tokens[pos + 1]?.t === 'op' && tokens[pos + 1]!.v === '(') {
      pos += 2;
      const args: Operand[] = [];
      if (!isOp(')')) {
        for (;;) {
          args.push(operand());
          if (isOp(',')) { pos++; continue; }
          break;
        }
      }
      expect(')');
      return { kind: 'call', fn: t.v, args };
    }
    const left = operand();
    if (!isOp('==')) throw new UnsupportedMatcher('a bare value used as a condition (expected "==")');
    pos++;
    const right = operand();
    if (isOp('==')) throw new UnsupportedMatcher('chained "=="');
    return { kind: 'eq', left, right };
  };

  const and = (): MatcherExpr => {
    const items = [primary()];
    while (isOp('&&')) { pos++; items.push(primary()); }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  };

  const or = (): MatcherExpr => {
    const items = [and()];
    while (isOp('||')) { pos++; items.push(and()); }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  };

  const expr = or();
  if (pos !== tokens.length) throw new UnsupportedMatcher(`unexpected "${String(peek()?.v)}" at token ${pos + 1}`);
  return expr;
}

/** The policy columns an expression reads. */
export function policyColumns(e: MatcherExpr): Set<string> {
  const out = new Set<string>();
  const visit = (x: MatcherExpr): void => {
    if ('items' in x) { x.items.forEach(visit); return; }
    const ops = x.kind === 'eq' ? [x.left, x.right] : x.args;
    for (const o of ops) if (o.kind === 'p') out.add(o.name);
  };
  visit(e);
  return out;
}

/** True when the expression reads any request token. */
export function readsRequest(e: MatcherExpr): boolean {
  if ('items' in e) return e.items.some(readsRequest);
  const ops = e.kind === 'eq' ? [e.left, e.right] : e.args;
  return ops.some((o) => o.kind === 'r');
}

/** Renders an expression back to matcher syntax, for fallback reasons. */
export function show(e: MatcherExpr): string {
  const op = (o: Operand): string => (o.kind === 'lit' ? `"${o.value}"` : `${o.kind}.${o.name}`);
  switch (e.kind) {
    case 'or': return `(${e.items.map(show).join(' || ')})`;
    case 'and': return e.items.map(show).join(' && ');
    case 'eq': return `${op(e.left)} == ${op(e.right)}`;
    case 'call': return `${e.fn}(${e.args.map(op).join(', ')})`;
  }
}
