/**
 * A small parser for Casbin matcher expressions, for lint only: it lets
 * `policy check` see which top-level `&&` terms a matcher has and which
 * request and policy fields each term reads. It never decides a request (the
 * engine does). Anything it does not understand yields `undefined`, and the
 * linter then falls back to reasoning that holds for any matcher.
 */

/** A parsed matcher expression. */
export type Expr =
  | { readonly kind: 'field'; readonly def: string; readonly name: string }
  | { readonly kind: 'literal'; readonly value: string | number | boolean }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[] }
  | { readonly kind: 'not'; readonly arg: Expr }
  | { readonly kind: 'binary'; readonly op: string; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'list'; readonly items: readonly Expr[] };

type Token = { readonly t: 'str'; readonly v: string } | { readonly t: 'num'; readonly v: number } | { readonly t: 'id'; readonly v: string } | { readonly t: 'op'; readonly v: string };

const OPS = ['&&', '||', '==', '!=', '<=', '>=', '!', '<', '>', '+', '-', '*', '/', '%', '(', ')', ',', '[', ']'];
// Binding strength of binary operators, loosest first (JavaScript's order, as jsep uses).
const PRECEDENCE: ReadonlyMap<string, number> = new Map([
  ['||', 1], ['&&', 2], ['==', 3], ['!=', 3], ['<', 4], ['>', 4], ['<=', 4], ['>=', 4], ['in', 4],
  ['+', 5], ['-', 5], ['*', 6], ['/', 6], ['%', 6],
]);

function tokenize(src: string): Token[] | undefined {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) { v += src[j + 1]; j += 2; continue; }
        v += src[j];
        j++;
      }
      if (j >= src.length) return undefined;
      out.push({ t: 'str', v });
      i = j + 1;
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(src.slice(i));
    if (num) { out.push({ t: 'num', v: Number(num[0]) }); i += num[0].length; continue; }
    const id = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*/.exec(src.slice(i));
    if (id) { out.push({ t: 'id', v: id[0] }); i += id[0].length; continue; }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) return undefined;
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  return out;
}

class Parser {
  readonly #toks: Token[];
  #pos = 0;
  constructor(toks: Token[]) { this.#toks = toks; }

  parseAll(): Expr | undefined {
    const e = this.#binary(1);
    return e && this.#pos === this.#toks.length ? e : undefined;
  }

  #peekOp(): string | undefined {
    const t = this.#toks[this.#pos];
    if (!t) return undefined;
    if (t.t === 'op') return t.v;
    return t.t === 'id' && t.v === 'in' ? 'in' : undefined;
  }

  #eat(op: string): boolean {
    if (this.#peekOp() !== op) return false;
    this.#pos++;
    return true;
  }

  #binary(min: number): Expr | undefined {
    let left = this.#unary();
    if (!left) return undefined;
    for (;;) {
      const op = this.#peekOp();
      const prec = op === undefined ? undefined : PRECEDENCE.get(op);
      if (op === undefined || prec === undefined || prec < min) return left;
      this.#pos++;
      const right = this.#binary(prec + 1);
      if (!right) return undefined;
      left = { kind: 'binary', op, left, right };
    }
  }

  #unary(): Expr | undefined {
    if (this.#eat('!')) {
      const arg = this.#unary();
      return arg && { kind: 'not', arg };
    }
    if (this.#eat('-')) {
      const arg = this.#unary();
      return arg && { kind: 'binary', op: '-', left: { kind: 'literal', value: 0 }, right: arg };
    }
    return this.#primary();
  }

  #list(close: string): Expr[] | undefined {
    const items: Expr[] = [];
    if (this.#eat(close)) return items;
    for (;;) {
      const e = this.#binary(1);
      if (!e) return undefined;
      items.push(e);
      if (this.#eat(close)) return items;
      if (!this.#eat(',')) return undefined;
    }
  }

  #primary(): Expr | undefined {
    const t = this.#toks[this.#pos];
    if (!t) return undefined;
    if (t.t === 'str' || t.t === 'num') { this.#pos++; return { kind: 'literal', value: t.v }; }
    if (t.t === 'id') {
      this.#pos++;
      if (t.v === 'true' || t.v === 'false') return { kind: 'literal', value: t.v === 'true' };
      if (this.#eat('(')) {
        const args = this.#list(')');
        return args && { kind: 'call', name: t.v, args };
      }
      const dot = t.v.indexOf('.');
      if (dot === -1 || t.v.indexOf('.', dot + 1) !== -1) return undefined;
      return { kind: 'field', def: t.v.slice(0, dot), name: t.v.slice(dot + 1) };
    }
    if (this.#eat('(')) {
      const items = this.#list(')');
      if (!items || items.length === 0) return undefined;
      return items.length === 1 ? items[0] : { kind: 'list', items };
    }
    if (this.#eat('[')) {
      const items = this.#list(']');
      return items && { kind: 'list', items };
    }
    return undefined;
  }
}

/** Parses a matcher; undefined when it uses syntax this parser does not know. */
export function parseMatcher(src: string): Expr | undefined {
  const toks = tokenize(src);
  return toks ? new Parser(toks).parseAll() : undefined;
}

/** The top-level `&&` terms of an expression (the expression itself when it is not a conjunction). */
export function conjuncts(e: Expr): Expr[] {
  if (e.kind === 'binary' && e.op === '&&') return [...conjuncts(e.left), ...conjuncts(e.right)];
  return [e];
}

/** The names of the fields of definition `def` (`r`, `p`) an expression reads. */
export function fieldsOf(e: Expr, def: string): Set<string> {
  const out = new Set<string>();
  const walk = (x: Expr): void => {
    switch (x.kind) {
      case 'field': if (x.def === def) out.add(x.name); break;
      case 'call': x.args.forEach(walk); break;
      case 'not': walk(x.arg); break;
      case 'binary': walk(x.left); walk(x.right); break;
      case 'list': x.items.forEach(walk); break;
      case 'literal': break;
    }
  };
  walk(e);
  return out;
}
