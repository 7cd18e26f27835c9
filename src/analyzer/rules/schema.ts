/**
 * Schema of a detection rules file (policies/detections.yaml). Strict: an
 * unknown key is an error, because a misspelt `capacty` silently falling back
 * to a default is how a reviewed rule turns into a different one. Durations
 * use the one meshgate format (`10s`, `9m`) and are milliseconds after
 * parsing. Cross-field checks (operators valid for a field's kind, regexes
 * that compile, unique names) live in src/analyzer/rules/load.ts.
 * docs/detections.md is the reference for every key.
 */
import { z } from 'zod';
import { parseDuration } from '../../core/duration.ts';
import { FIELD_NAMES, type FieldName } from './fields.ts';

const SCOPES = ['spiffe', 'sub', 'jti', 'cert', 'ip'] as const;

const DURATION_HINT = 'expected a positive duration such as 500ms, 10s, 9m, 1h';
const duration = z
  .string({ error: DURATION_HINT })
  .transform((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({ code: 'custom', message: DURATION_HINT });
      return z.NEVER;
    }
    return ms;
  });

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Operators on one field; several in one matcher must all hold. */
const matcherSchema = z.strictObject({
  equals: scalar.optional(),
  in: z.array(scalar).min(1).optional(),
  notIn: z.array(scalar).min(1).optional(),
  prefix: oneOrMany.optional(),
  suffix: oneOrMany.optional(),
  contains: oneOrMany.optional(),
  regex: z.string().min(1).max(512).optional(),
  ignoreCase: z.boolean().optional(),
  gte: z.number().optional(),
  gt: z.number().optional(),
  lte: z.number().optional(),
  lt: z.number().optional(),
  exists: z.boolean().optional(),
});

export type Scalar = z.infer<typeof scalar>;
export type MatcherSpec = z.infer<typeof matcherSchema>;
/** A field test: a scalar (equals), a list (in) or a matcher object. */
export type FieldMatch = Scalar | Scalar[] | MatcherSpec;

/** A condition over one event: field tests (all must hold) and `all`/`any`/`not` combinators. */
export type FilterSpec = { readonly [F in FieldName]?: FieldMatch } & {
  readonly all?: readonly FilterSpec[];
  readonly any?: readonly FilterSpec[];
  readonly not?: FilterSpec;
};

const fieldMatch = z.union([scalar, z.array(scalar).min(1), matcherSchema]);

export const filterSchema: z.ZodType<FilterSpec> = z.strictObject({
  ...Object.fromEntries(FIELD_NAMES.map((f) => [f, fieldMatch.optional()])),
  get all() {
    return z.array(filterSchema).min(1).optional();
  },
  get any() {
    return z.array(filterSchema).min(1).optional();
  },
  get not() {
    return filterSchema.optional();
  },
}) as unknown as z.ZodType<FilterSpec>;

const scopeSchema = z.enum(SCOPES);
const fieldSchema = z.enum(FIELD_NAMES as unknown as [FieldName, ...FieldName[]]);

const remediationSchema = z.strictObject({
  scope: scopeSchema.optional().describe('what to quarantine (default: the alert scope)'),
  duration,
  simulated: z.boolean().describe('record "would block" only; required so nobody enables blocking by omission'),
});

const common = {
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be lower-case letters, digits, - or _ (at most 64)'),
  title: z.string().min(1).max(200),
  severity: z.enum(['low', 'medium', 'high', 'critical']),
  description: z.string().min(1),
  enabled: z.boolean().default(true),
  filter: filterSchema,
  groupBy: z.union([scopeSchema, z.array(scopeSchema).min(1).max(5), z.literal('global')]),
  dedup: duration.optional(),
  remediation: remediationSchema.optional(),
  maxGroups: z.number().int().min(1).max(1_000_000).default(10_000),
  idle: duration.optional(),
  references: z.array(z.string().min(1)).optional(),
};

const leaky = z.strictObject({
  ...common,
  kind: z.literal('leaky'),
  capacity: z.number().int().min(1).max(100_000),
  leakSpeed: duration,
  distinct: fieldSchema.optional(),
});

const threshold = z.strictObject({
  ...common,
  kind: z.literal('threshold'),
  window: duration,
  count: z.number().int().min(1).max(100_000),
  distinct: fieldSchema.optional(),
  windowType: z.enum(['sliding', 'tumbling']).default('sliding'),
});

const single = z.strictObject({ ...common, kind: z.literal('single') });

const sequence = z.strictObject({
  ...common,
  kind: z.literal('sequence'),
  window: duration,
  steps: z.array(z.strictObject({ filter: filterSchema, count: z.number().int().min(1).max(10_000).default(1) })).min(2).max(8),
});

const newTerms = z.strictObject({
  ...common,
  kind: z.literal('new_terms'),
  fields: z.array(fieldSchema).min(1).max(4),
  learning: duration,
  relearnOn: fieldSchema.optional(),
  relearn: duration.optional(),
  maxTerms: z.number().int().min(1).max(100_000).default(1000),
});

const ewma = z.strictObject({
  ...common,
  kind: z.literal('ewma'),
  bucket: duration,
  measure: z.enum(['count', 'sum', 'ratio']),
  field: fieldSchema.optional(),
  numerator: filterSchema.optional(),
  alpha: z.number().gt(0).max(1).default(0.1),
  warmup: z.number().int().min(1).max(100_000).default(30),
  minZ: z.number().positive().optional(),
  minFactor: z.number().gt(1).optional(),
  minValue: z.number().min(0).default(0),
  minEvents: z.number().int().min(1).default(20),
  attribute: z.array(scopeSchema).min(1).max(5).optional(),
});

export const ruleSchema = z.discriminatedUnion('kind', [leaky, threshold, single, sequence, newTerms, ewma]);

/** One validated rule (durations in ms, defaults applied). */
export type RuleSpec = z.output<typeof ruleSchema>;
export type RuleKind = RuleSpec['kind'];
export type LeakyRule = z.output<typeof leaky>;
export type ThresholdRule = z.output<typeof threshold>;
export type SingleRule = z.output<typeof single>;
export type SequenceRule = z.output<typeof sequence>;
export type NewTermsRule = z.output<typeof newTerms>;
export type EwmaRule = z.output<typeof ewma>;

/** A validated, frozen rules file. `source` names the file (for messages and the snapshot). */
export interface RuleSet {
  readonly version: 1;
  readonly rules: readonly RuleSpec[];
  readonly source: string;
}
