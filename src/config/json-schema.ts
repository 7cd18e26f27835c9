/**
 * The published JSON Schema of meshgate.yaml (for editors: yaml-language-server,
 * VS Code, JetBrains) and the key reference table of docs/configuration.md —
 * both derived from the zod schema, so neither can drift from what the loader
 * accepts. `npm run schema` writes them; a test fails when either is stale.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';

/** A JSON Schema document (draft 2020-12), as plain JSON data. */
export type JsonSchema = { readonly [key: string]: unknown };

export const CONFIG_SCHEMA_ID = 'urn:meshgate:config:v1';

// Formats JSON Schema validators know; zod also emits its own names
// (`starts_with`), which strict validators reject. The `pattern` beside them
// already carries the constraint.
const STANDARD_FORMATS = new Set(['uri', 'email', 'hostname', 'ipv4', 'ipv6', 'date-time', 'date', 'time', 'duration', 'uuid', 'regex']);

/**
 * The JSON Schema of the config *input* (what people write: durations are
 * strings such as `30s`, defaults are listed). Deterministic: same schema in,
 * same JSON out.
 */
export function configJsonSchema(): JsonSchema {
  const generated = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: CONFIG_SCHEMA_ID,
    title: 'meshgate configuration',
    ...(stripFormats(rest) as Record<string, unknown>),
  };
}

function stripFormats(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripFormats);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, child] of Object.entries(v)) {
    if (k === 'format' && typeof child === 'string' && !STANDARD_FORMATS.has(child)) continue;
    out[k] = stripFormats(child);
  }
  return out;
}

type Node = {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  items?: Node;
  anyOf?: Node[];
  properties?: Record<string, Node>;
  required?: string[];
};

const DURATION_NOTE = /\s*\(a duration: [^;]*; default [^)]*\)$/;

/**
 * Markdown reference of every key: one section per top-level key, one table
 * row per nested key (`issuers[].audiences`), with type, default and meaning.
 */
export function configReferenceMarkdown(schema: JsonSchema = configJsonSchema()): string {
  const root = schema as Node;
  const required = new Set(root.required ?? []);
  const out: string[] = [];
  for (const [key, node] of Object.entries(root.properties ?? {})) {
    const status = required.has(key) ? 'required' : node.default !== undefined ? 'optional, has defaults' : 'optional';
    out.push(`### \`${key}\` (${status})`, '');
    if (node.description) out.push(`${escapeText(node.description)}.`, '');
    const rows: string[][] = [];
    collectRows(node.type === 'array' && node.items ? node.items : node, node.type === 'array' ? `${key}[]` : key, rows);
    if (node.type === 'array') out.push(`A list; each item has these keys:`, '');
    out.push('| Key | Type | Default | Meaning |', '|---|---|---|---|');
    for (const r of rows) out.push(`| ${r.join(' | ')} |`);
    out.push('');
  }
  return out.join('\n');
}

/** `form` numbers the alternatives of a union (`{header}` or `{cookie}`). */
function collectRows(node: Node, prefix: string, rows: string[][], form?: number): void {
  const required = new Set(node.required ?? []);
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = `${prefix}.${key}`;
    const def = child.default === undefined ? (required.has(key) ? '**required**' : '—') : `\`${JSON.stringify(child.default)}\``;
    const meaning = (form === undefined ? '' : `form ${form}: `) + (child.description ?? '').replace(DURATION_NOTE, '');
    rows.push([`\`${path}\``, typeName(child), def, meaning].map(escapeText));
    const inner = child.type === 'array' ? child.items : child;
    const innerPath = child.type === 'array' ? `${path}[]` : path;
    if (inner?.properties) collectRows(inner, innerPath, rows);
    (inner?.anyOf ?? []).forEach((alt, i) => {
      if (alt.properties) collectRows(alt, innerPath, rows, i + 1);
    });
  }
}

function typeName(n: Node): string {
  if (n.anyOf) return [...new Set(n.anyOf.map(typeName))].join(' or ');
  if (n.enum) return n.enum.map((v) => `\`${String(v)}\``).join(' | ');
  switch (n.type) {
    case 'string':
      if (n.pattern?.includes('(ms|s|m|h|d)')) return 'duration';
      if (n.format === 'uri') return 'URL';
      return 'string';
    case 'integer':
      return n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER ? `integer ${n.minimum ?? ''}–${n.maximum}` : n.minimum !== undefined ? `integer ≥ ${n.minimum}` : 'integer';
    case 'array':
      return `${n.minItems ? 'non-empty ' : ''}list of ${n.items ? typeName(n.items) : 'any'}`;
    default:
      return n.type ?? 'any';
  }
}

/** Escapes what would break a Markdown table cell. */
function escapeText(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/\n/g, ' ');
}
