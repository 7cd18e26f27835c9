/**
 * Writes labelled audit traces for measuring detection quality (issue 4):
 * hours of normal mesh traffic in front of an `orders` service — frontends
 * carrying user tokens, backend workloads with service tokens, health checks
 * — with diurnal variation, injected attacks of every kind in PRODUCT §1.8,
 * and near-miss benign cases that a careless rule would flag.
 *
 *   node scripts/gen-scenarios.ts [--out DIR] [--seed N] [--hours H]   (default DIR: bench/.data/detect-s<N>-h<H>)
 *
 * Output: DIR/audit/ (a real hash-chained audit log written with
 * AuditWriter; `meshgate audit verify DIR/audit` passes) and DIR/labels.json
 * (which event ids belong to which attack, and the rules expected to fire).
 * The same seed and hours give byte-identical files: a seeded PRNG drives
 * everything, event ids included, and the writer runs on a manual clock.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditEvent } from '../src/audit/event.ts';
import { AuditWriter } from '../src/audit/writer.ts';
import { ManualClock } from '../src/core/clock.ts';

/** Bump when the traffic model changes: cached traces of another version are regenerated. */
export const SCENARIO_VERSION = 4;

export interface ScenarioOptions {
  readonly out: string;
  readonly seed?: number;
  readonly hours?: number;
}

/** One injected attack: its events and the rules that must detect it. */
export interface AttackLabel {
  readonly id: string;
  readonly kind: string;
  /** Rules that must fire on it (recall is measured against these). */
  readonly expected: readonly string[];
  /** Rules that may also fire on it without being a false alert. */
  readonly also: readonly string[];
  readonly actor: string;
  readonly start: string;
  readonly events: readonly string[];
}

/** A benign near-miss episode (its events count as benign). */
export interface NearMissLabel {
  readonly id: string;
  readonly kind: string;
  readonly start: string;
  readonly note: string;
  readonly events: number;
}

export interface Labels {
  readonly v: typeof SCENARIO_VERSION;
  readonly seed: number;
  readonly hours: number;
  readonly start: string;
  readonly end: string;
  readonly events: number;
  readonly attackEvents: number;
  readonly attacks: readonly AttackLabel[];
  readonly nearMisses: readonly NearMissLabel[];
}

// ---------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: small, fast, good enough for traffic shapes; fully determined by the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  readonly next: () => number;
  constructor(seed: number) { this.next = prng(seed); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)] as T; }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  lognormal(median: number, sigma: number): number { return median * Math.exp(sigma * this.normal()); }
  poisson(mean: number): number {
    if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const l = Math.exp(-mean);
    let k = 0;
    let p = 1;
    do { k++; p *= this.next(); } while (p > l);
    return k - 1;
  }
  hex(n: number): string {
    let s = '';
    while (s.length < n) s += Math.floor(this.next() * 0x100000000).toString(16).padStart(8, '0');
    return s.slice(0, n);
  }
  weighted<T extends { weight: number }>(xs: readonly T[]): T {
    let total = 0;
    for (const x of xs) total += x.weight;
    let r = this.next() * total;
    for (const x of xs) if ((r -= x.weight) < 0) return x;
    return xs[xs.length - 1] as T;
  }
}

// ---------------------------------------------------------------------------
// The mesh

const TD = 'spiffe://mesh.local/ns/shop/sa';
const ISS = 'https://issuer.mesh.local';
const POLICY_VERSION = '9c1d44e0a7b3f215';

interface Pod {
  readonly ip: string;
  readonly cert: string;
  /** Certificates that replaced `cert` from a given time (rollouts), in time order. */
  readonly later: [number, string][];
}

function certAt(p: Pod, t: number): string {
  let c = p.cert;
  for (const [from, cert] of p.later) if (t >= from) c = cert;
  return c;
}
interface Caller { readonly spiffe: string | null; readonly pod: Pod }
interface Endpoint {
  readonly method: string;
  readonly path: (r: Rand) => string;
  readonly route: string;
  readonly weight: number;
  readonly bytes: number;
  /** Allowed for this caller (else a benign 403 poke). */
  readonly allowed?: boolean;
}
interface Workload {
  readonly name: string;
  readonly spiffe: string;
  readonly pods: Pod[];
  /** Requests per second at the daily peak. */
  readonly peak: number;
  /** Frontends carry user tokens; others their own service token. */
  readonly users: boolean;
  endpoints: Endpoint[];
}

const id = (lo: number, hi: number) => (r: Rand): string => String(r.int(lo, hi));
const ep = (method: string, p: (r: Rand) => string, route: string, weight: number, bytes: number, allowed = true): Endpoint => ({ method, path: p, route, weight, bytes, allowed });
const fixed = (s: string) => (): string => s;

const USER_ENDPOINTS: Endpoint[] = [
  ep('GET', (r) => `/orders/${id(1000, 99999)(r)}`, 'orders', 35, 2200),
  ep('GET', fixed('/orders'), 'orders', 15, 20_000),
  ep('POST', fixed('/orders'), 'orders', 5, 900),
  ep('GET', (r) => `/orders/${id(1000, 99999)(r)}/items`, 'orders', 15, 4000),
  ep('GET', fixed('/cart'), 'cart', 15, 3000),
  ep('PUT', (r) => `/cart/items/${id(1, 5000)(r)}`, 'cart', 8, 600),
  ep('DELETE', (r) => `/cart/items/${id(1, 5000)(r)}`, 'cart', 2, 100),
  ep('GET', (r) => `/customers/${id(1, 50000)(r)}`, 'customers', 4, 1500),
  ep('GET', (r) => `/customers/search/${r.pick(['smith', 'garcia', "o'neil", 'nguyen', "d'angelo", 'mueller'])}`, 'customers', 1, 5000),
  // Users poking at a page they may not use: the benign denials every frontend sees.
  ep('GET', fixed('/admin/stats'), 'admin', 0.1, 150, false),
];

// ---------------------------------------------------------------------------
// Events

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** An event being built: id, time and requestId are assigned once all events exist (ids sort by time). */
interface Draft {
  readonly ev: Mutable<AuditEvent>;
  readonly t: number;
  /** Completion time: the order the gateway writes events in. */
  readonly end: number;
}

interface Req {
  readonly method?: string | null;
  readonly path?: string | null;
  readonly rawPath?: string | null;
  readonly route?: string | null;
  readonly sub?: string | null;
  readonly jti?: string | null;
  readonly decision?: 'allow' | 'deny';
  readonly reason?: string;
  readonly status?: number;
  readonly bytesOut?: number;
  readonly bytesIn?: number;
  readonly type?: AuditEvent['type'];
  readonly tls?: string;
  readonly alarm?: { readonly rawDecision: 'allow' | 'deny'; readonly rawRule: string | null };
}

class Trace {
  readonly drafts: Draft[] = [];
  readonly r: Rand;
  readonly #hashes = new Map<string, string>();
  constructor(r: Rand) { this.r = r; }

  tokenHash(jti: string): string {
    let h = this.#hashes.get(jti);
    if (h === undefined) {
      h = createHash('sha256').update(`token:${jti}`).digest('base64url');
      this.#hashes.set(jti, h);
    }
    return h;
  }

  /** One audit event at `t` from `c`. Defaults: an allowed GET. */
  add(t: number, c: Caller, q: Req): Draft {
    const r = this.r;
    const decision = q.decision ?? 'allow';
    const reason = q.reason ?? 'allowed';
    const sub = q.sub ?? null;
    const latency = Math.round(r.lognormal(decision === 'allow' ? 12 : 0.8, 0.6) * 1000) / 1000;
    const method = q.method === undefined ? 'GET' : q.method;
    const p = q.path === undefined ? '/' : q.path;
    const type = q.type ?? 'request';
    const ev: Mutable<AuditEvent> = {
      v: 1,
      type,
      id: '',
      time: '',
      requestId: '',
      source: { ip: c.pod.ip, port: r.int(32768, 60999) },
      peer: c.spiffe !== null || c.pod.cert !== '' ? { spiffeId: c.spiffe ?? '', fingerprint: certAt(c.pod, t) } : null,
      principal: sub === null ? null : { iss: ISS, sub },
      jti: sub === null ? null : (q.jti ?? null),
      tokenHash: sub === null || !q.jti ? null : this.tokenHash(q.jti),
      method,
      path: p,
      rawPath: q.rawPath ?? null,
      route: q.route === undefined ? 'orders' : q.route,
      decision,
      reason,
      rule: decision === 'allow' ? `policy.csv:${r.int(3, 40)}: p, role:${sub?.startsWith('svc-') ? 'service' : 'customer'}, ${p ?? '/'}, ${method ?? '-'}, allow` : null,
      policyVersion: reason.startsWith('jwt_') || reason.startsWith('path_') || type === 'tls_handshake' ? null : POLICY_VERSION,
      status: q.status ?? (decision === 'allow' ? (method === 'POST' ? 201 : 200) : 403),
      bytesIn: q.bytesIn ?? (method === 'POST' || method === 'PUT' || method === 'PATCH' ? r.int(80, 900) : 0),
      bytesOut: q.bytesOut ?? (decision === 'allow' ? 0 : 120),
      latencyMs: type === 'request' ? latency : 0,
      shadow: null,
      ...(q.tls !== undefined ? { tls: { error: q.tls } } : {}),
      ...(q.alarm !== undefined ? { severity: 'high' as const, alarm: q.alarm } : {}),
    };
    const d: Draft = { ev, t, end: t + ev.latencyMs };
    this.drafts.push(d);
    return d;
  }
}

const HOUR = 3_600_000;
const MIN = 60_000;

/** Daily shape: quiet at night, peak early afternoon (UTC), ±10 % per-minute wobble. */
function diurnal(t: number): number {
  const h = (t / HOUR) % 24;
  return 0.55 + 0.45 * Math.sin((2 * Math.PI * (h - 8)) / 24);
}

function pod(r: Rand, subnet: number): Pod {
  return { ip: `10.1.${subnet}.${r.int(2, 250)}`, cert: r.hex(64), later: [] };
}

function workloads(r: Rand): Workload[] {
  const w = (name: string, replicas: number, peak: number, users: boolean, endpoints: Endpoint[], subnet: number): Workload => ({
    name, spiffe: `${TD}/${name}`, pods: Array.from({ length: replicas }, () => pod(r, subnet)), peak, users, endpoints,
  });
  return [
    w('web', 3, 10, true, USER_ENDPOINTS, 10),
    w('mobile-bff', 2, 5, true, USER_ENDPOINTS.filter((e) => e.route !== 'customers'), 11),
    w('billing', 1, 2, false, [
      ep('GET', (x) => `/orders/${id(1000, 99999)(x)}`, 'orders', 60, 2200),
      ep('POST', (x) => `/orders/${id(1000, 99999)(x)}/invoice`, 'orders', 30, 700),
      ep('GET', (x) => `/orders/${id(1000, 99999)(x)}/items`, 'orders', 10, 4000),
    ], 12),
    w('shipping', 2, 1.5, false, [
      ep('GET', (x) => `/orders/${id(1000, 99999)(x)}`, 'orders', 50, 2200),
      ep('PATCH', (x) => `/orders/${id(1000, 99999)(x)}/status`, 'orders', 40, 300),
      ep('GET', (x) => `/orders/${id(1000, 99999)(x)}/items`, 'orders', 10, 4000),
    ], 13),
    w('reporting', 1, 0.5, false, [
      ep('GET', fixed('/reports/daily'), 'reports', 50, 8000),
      ep('GET', fixed('/orders'), 'orders', 30, 50_000),
      ep('POST', (x) => `/reports/${id(1, 999)(x)}/export`, 'reports', 20, 2000),
    ], 14),
  ];
}

const USERS = 400;
const USER_TTL = 15 * MIN;
const SVC_TTL = 10 * MIN;

/** Zipf-ish popularity: a few users are busy, most are occasional. */
function userPicker(r: Rand): () => number {
  const cum: number[] = [];
  let s = 0;
  for (let i = 1; i <= USERS; i++) cum.push((s += 1 / i ** 1.1));
  return () => {
    const x = r.next() * s;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cum[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/**
 * The user's token at `t` in one client app (web and mobile sessions hold
 * different tokens): refreshed on schedule every 15 minutes, at a per-user phase.
 */
function userToken(u: number, t: number, app = 'web'): { jti: string; sinceRefresh: number } {
  const phase = ((u * 7919 + app.length * 104729) * 1000) % USER_TTL;
  const k = Math.floor((t - phase) / USER_TTL);
  return { jti: `tok-u${u}-${app}-${k}`, sinceRefresh: t - phase - k * USER_TTL };
}

function svcToken(name: string, t: number): { jti: string; sinceRefresh: number } {
  const k = Math.floor(t / SVC_TTL);
  return { jti: `tok-${name}-${k}`, sinceRefresh: t - k * SVC_TTL };
}

// ---------------------------------------------------------------------------
// Normal traffic and near misses

interface Context {
  readonly trace: Trace;
  readonly r: Rand;
  readonly start: number;
  readonly end: number;
  readonly ws: Map<string, Workload>;
  readonly user: () => number;
  readonly nearMisses: NearMissLabel[];
  /** Upstream outages (retry storm): [from, to). */
  readonly outages: [number, number][];
  /** Rollouts: at `at`, `run` changes the workload (certificates, endpoints). */
  readonly rollouts: { readonly workload: string; readonly at: number; readonly run: () => void }[];
}

function outageAt(ctx: Context, t: number): boolean {
  return ctx.outages.some(([a, b]) => t >= a && t < b);
}

/** One normal request from workload `w` at `t` (with its benign noise). */
function normalRequest(ctx: Context, w: Workload, t: number): void {
  const { trace, r } = ctx;
  const caller: Caller = { spiffe: w.spiffe, pod: r.pick(w.pods) };
  const e = r.weighted(w.endpoints);
  const path = e.path(r);
  const u = w.users ? ctx.user() : 0;
  const tok = w.users ? userToken(u, t, w.name) : svcToken(w.name, t);
  const sub = w.users ? `user-${u}` : `svc-${w.name}`;
  // Token refreshed on schedule: now and then the first call after expiry still
  // carries the old token (one 401 jwt_expired), then the client refreshes.
  if (tok.sinceRefresh < 5000 && r.next() < (w.users ? 0.05 : 0.1)) {
    trace.add(t, caller, { method: e.method, path, route: e.route, decision: 'deny', reason: 'jwt_expired', status: 401 });
    t += r.int(50, 400);
  }
  if (outageAt(ctx, t)) {
    // Upstream blip: 502/504, and the client retries twice within a second.
    for (let i = 0; i < 3; i++) {
      const bad = r.next() < 0.5;
      trace.add(t + i * r.int(100, 400), caller, { method: e.method, path, route: e.route, sub, jti: tok.jti, decision: 'deny', reason: bad ? 'upstream_unavailable' : 'upstream_timeout', status: bad ? 502 : 504 });
    }
    return;
  }
  if (e.allowed === false) {
    trace.add(t, caller, { method: e.method, path, route: e.route, sub, jti: tok.jti, decision: 'deny', reason: 'authz_no_matching_rule', status: 403 });
    return;
  }
  const x = r.next();
  if (x < 0.0005) {
    trace.add(t, caller, { method: e.method, path, route: e.route, sub, jti: tok.jti, decision: 'deny', reason: 'upstream_error', status: 502 });
  } else if (x < 0.0105 && e.method === 'GET') {
    trace.add(t, caller, { method: e.method, path, route: e.route, sub, jti: tok.jti, status: 404, bytesOut: 90 });
  } else {
    trace.add(t, caller, { method: e.method, path, route: e.route, sub, jti: tok.jti, bytesOut: Math.round(r.lognormal(e.bytes, 0.5)) });
  }
}

function normalTraffic(ctx: Context): void {
  const { r, start, end } = ctx;
  for (const w of ctx.ws.values()) {
    const pending = ctx.rollouts.filter((x) => x.workload === w.name);
    for (let m = start; m < end; m += MIN) {
      while (pending.length > 0 && (pending[0] as { at: number }).at <= m) (pending.shift() as { run: () => void }).run();
      const wobble = Math.exp(0.1 * r.normal());
      for (let s = m; s < m + MIN && s < end; s += 1000) {
        const n = r.poisson(w.peak * diurnal(s) * wobble);
        for (let i = 0; i < n; i++) normalRequest(ctx, w, s + r.int(0, 999));
      }
    }
  }
  // Kubelet probes: no certificate, no token, every 10 s.
  const kubelet: Caller = { spiffe: null, pod: { ip: '10.0.0.1', cert: '', later: [] } };
  for (let t = start + 3000; t < end; t += 10_000) ctx.trace.add(t, kubelet, { method: 'GET', path: '/healthz', route: 'health', bytesOut: 15 });
}

function nearMisses(ctx: Context): void {
  const { trace, r, start } = ctx;
  const ws = ctx.ws;
  const web = ws.get('web') as Workload;
  const count = (from: number): number => trace.drafts.length - from;

  // 1. Retry storm after a 60 s upstream blip (handled in normalRequest).
  const storm = start + 2 * HOUR + 40 * MIN;
  ctx.outages.push([storm, storm + MIN]);
  ctx.nearMisses.push({ id: 'nm-retry-storm', kind: 'retry-storm', start: new Date(storm).toISOString(), note: 'upstream down for 60 s: every call gets 502/504 and is retried twice', events: 0 });

  // 2. A user who mistypes twice: two rejected credentials, then success (12 times, ≥ 30 min apart).
  const n0 = trace.drafts.length;
  for (let i = 0; i < 12; i++) {
    const t = start + 20 * MIN + i * 38 * MIN + r.int(0, 8 * MIN);
    const u = ctx.user();
    const fe = i % 3 === 2 ? (ws.get('mobile-bff') as Workload) : web;
    const c: Caller = { spiffe: fe.spiffe, pod: r.pick(fe.pods) };
    trace.add(t, c, { method: 'GET', path: '/cart', route: 'cart', decision: 'deny', reason: 'jwt_bad_signature', status: 401 });
    trace.add(t + r.int(3000, 9000), c, { method: 'GET', path: '/cart', route: 'cart', decision: 'deny', reason: 'jwt_bad_signature', status: 401 });
    trace.add(t + r.int(12_000, 20_000), c, { method: 'GET', path: '/cart', route: 'cart', sub: `user-${u}`, jti: userToken(u, t, fe.name).jti, bytesOut: 3000 });
  }
  ctx.nearMisses.push({ id: 'nm-mistype', kind: 'mistyped-credentials', start: new Date(start + 20 * MIN).toISOString(), note: '12 users: 2 rejected credentials then success', events: count(n0) });

  // 3. A legitimate client that always sends the same encoded slash (rejected, 400).
  const n1 = trace.drafts.length;
  const shipping = ws.get('shipping') as Workload;
  for (let t = start + 7 * MIN; t < ctx.end; t += 20 * MIN + r.int(0, 60_000)) {
    trace.add(t, { spiffe: shipping.spiffe, pod: r.pick(shipping.pods) }, { method: 'GET', path: null, rawPath: '/labels/2026%2F03.pdf', route: null, sub: 'svc-shipping', decision: 'deny', reason: 'path_encoded_slash', status: 400 });
  }
  ctx.nearMisses.push({ id: 'nm-encoded-slash', kind: 'client-bug', start: new Date(start + 7 * MIN).toISOString(), note: 'one client path with %2F, every ~20 min', events: count(n1) });

  // 4. A deploy: web rolls out (new pods, new certificates) and calls two new endpoints.
  const deploy = start + 3 * HOUR + 20 * MIN;
  ctx.nearMisses.push({ id: 'nm-deploy', kind: 'deploy-new-routes', start: new Date(deploy).toISOString(), note: 'web rollout: new certificates, then GET /orders/*/tracking and /recommendations', events: 0 });
  // Replicas are replaced one by one within two minutes.
  web.pods.forEach((p, i) => p.later.push([deploy + i * 40_000, r.hex(64)]));
  ctx.rollouts.push({
    workload: 'web',
    at: deploy,
    run: () => {
      web.endpoints = [
        ...USER_ENDPOINTS,
        ep('GET', (x) => `/orders/${id(1000, 99999)(x)}/tracking`, 'orders', 6, 1200),
        ep('GET', fixed('/recommendations'), 'recommendations', 4, 6000),
      ];
    },
  });

  // 5. A nightly batch job: a new identity exporting orders for 40 minutes at a steady rate.
  const n2 = trace.drafts.length;
  const batch: Caller = { spiffe: `${TD}/batch-exporter`, pod: pod(r, 20) };
  const b0 = start + 4 * HOUR;
  for (let t = b0; t < b0 + 40 * MIN; t += 1000) {
    const tok = svcToken('batch-exporter', t);
    for (let i = 0, n = r.poisson(12); i < n; i++) {
      trace.add(t + r.int(0, 999), batch, { method: 'GET', path: '/orders', route: 'orders', sub: 'svc-batch-exporter', jti: tok.jti, bytesOut: Math.round(r.lognormal(150_000, 0.3)) });
    }
  }
  ctx.nearMisses.push({ id: 'nm-batch', kind: 'batch-job', start: new Date(b0).toISOString(), note: 'new identity, 40 min, ~12 rps of 150 KB exports', events: count(n2) });
}

// ---------------------------------------------------------------------------
// Attacks: each writes its events from `t` and names the rules that must fire.

interface AttackCtx {
  readonly ctx: Context;
  readonly t: number;
  /** Instance number of this kind (0, 1): instances differ in actor and pace. */
  readonly i: number;
  /** Events added before begin() are benign set-up (e.g. the victim's own use of a token). */
  begin(): void;
}

interface AttackSpec {
  readonly actor: string;
  readonly expected: readonly string[];
  readonly also?: readonly string[];
}

type AttackFn = (a: AttackCtx) => AttackSpec;

const DEV = 'spiffe://mesh.local/ns/dev/sa';

function stranger(ctx: Context, spiffe: string | null, subnet: number): Caller {
  return { spiffe, pod: spiffe === null ? { ip: `10.${subnet}.${ctx.r.int(0, 255)}.${ctx.r.int(2, 250)}`, cert: '', later: [] } : pod(ctx.r, subnet) };
}

function member(ctx: Context, name: string): Caller {
  const w = ctx.ws.get(name) as Workload;
  return { spiffe: w.spiffe, pod: ctx.r.pick(w.pods) };
}

const actorOf = (c: Caller): string => c.spiffe ?? `ip:${c.pod.ip}`;

const CREDENTIAL_FAILURES = ['jwt_bad_signature', 'jwt_malformed'] as const;

const ATTACKS: Readonly<Record<string, AttackFn>> = {
  'brute-force': ({ ctx, t, i }) => {
    const c = i === 0 ? stranger(ctx, `${DEV}/debug-shell`, 30) : member(ctx, 'billing');
    const n = i === 0 ? 30 : 20;
    for (let k = 0; k < n; k++) {
      ctx.trace.add(t + k * (i === 0 ? 1000 : 1500), c, { method: 'GET', path: `/orders/${ctx.r.int(1000, 99999)}`, decision: 'deny', reason: CREDENTIAL_FAILURES[k % 2] as string, status: 401 });
    }
    return { actor: actorOf(c), expected: ['credential-brute-force'], also: ['forged-token-key', 'brute-force-then-success', 'error-ratio-spike'] };
  },

  'brute-force-then-success': ({ ctx, t, i }) => {
    const c = stranger(ctx, `${TD}/cart-worker-${i}`, 31);
    const gap = i === 0 ? 1000 : 9000;
    for (let k = 0; k < 8; k++) ctx.trace.add(t + k * gap, c, { method: 'GET', path: '/cart', route: 'cart', decision: 'deny', reason: CREDENTIAL_FAILURES[k % 2] as string, status: 401 });
    const ok = t + 8 * gap + 2000;
    for (let k = 0; k < 5; k++) ctx.trace.add(ok + k * 3000, c, { method: 'GET', path: '/cart', route: 'cart', sub: `svc-cart-worker-${i}`, jti: `tok-stolen-cw${i}`, bytesOut: 3000 });
    // The fast instance also overflows the brute-force bucket; the slow one (1 per 9 s) must not need it.
    return { actor: actorOf(c), expected: i === 0 ? ['brute-force-then-success', 'credential-brute-force'] : ['brute-force-then-success'], also: ['credential-brute-force', 'forged-token-key'] };
  },

  'credential-stuffing': ({ ctx, t, i }) => {
    const c = i === 0 ? stranger(ctx, `${DEV}/scraper`, 32) : stranger(ctx, null, 33);
    const users = new Set<number>();
    while (users.size < 40) users.add(ctx.r.int(1, USERS));
    let k = 0;
    for (const u of users) {
      const at = t + k * 4500;
      // A harvested token list: 30 % already expired (no identity visible), 50 % valid
      // but not allowed here, 20 % that work.
      const x = (k++ * 7) % 10;
      const tok = userToken(u, at);
      if (x < 3) ctx.trace.add(at, c, { method: 'GET', path: '/orders', decision: 'deny', reason: 'jwt_expired', status: 401 });
      else if (x < 8) ctx.trace.add(at, c, { method: 'GET', path: '/admin/stats', route: 'admin', sub: `user-${u}`, jti: tok.jti, decision: 'deny', reason: 'authz_no_matching_rule', status: 403 });
      else ctx.trace.add(at, c, { method: 'GET', path: '/orders', sub: `user-${u}`, jti: tok.jti, bytesOut: 20_000 });
    }
    return { actor: actorOf(c), expected: ['credential-stuffing'], also: ['expired-credential-use', 'privilege-probing', 'token-replay', 'error-ratio-spike'] };
  },

  'privilege-probing': ({ ctx, t, i }) => {
    const c = i === 0 ? member(ctx, 'shipping') : member(ctx, 'web');
    const sub = i === 0 ? 'svc-shipping' : `user-${350 + ctx.r.int(0, 40)}`;
    const targets = ['GET /admin/users', 'GET /admin/config', 'GET /internal/debug/vars', 'GET /billing/export', 'POST /orders/4711/refund', 'DELETE /orders/4711', 'GET /metrics', 'GET /actuator/env'];
    const n = i === 0 ? 8 : 6;
    for (let k = 0; k < n; k++) {
      const [method, path] = (targets[k] as string).split(' ') as [string, string];
      const u = i === 0 ? 0 : Number(sub.slice(5));
      ctx.trace.add(t + k * (i === 0 ? 30_000 : 50_000), c, { method, path, route: path.split('/')[1] ?? null, sub, jti: i === 0 ? svcToken('shipping', t).jti : userToken(u, t).jti, decision: 'deny', reason: k % 3 === 2 ? 'authz_deny_rule' : 'authz_no_matching_rule', status: 403 });
    }
    return { actor: i === 0 ? actorOf(c) : sub, expected: ['privilege-probing'], also: ['lateral-movement', 'error-ratio-spike'] };
  },

  'forged-token': ({ ctx, t, i }) => {
    const c = i === 0 ? stranger(ctx, `${DEV}/legacy-client`, 34) : member(ctx, 'reporting');
    const reasons = ['jwt_alg_not_allowed', 'jwt_unknown_key', 'jwt_bad_signature', 'jwt_alg_not_allowed', 'jwt_unknown_key', 'jwt_alg_not_allowed', 'jwt_bad_signature', 'jwt_unknown_key', 'jwt_alg_not_allowed'];
    reasons.forEach((reason, k) => ctx.trace.add(t + k * 20_000, c, { method: 'GET', path: '/reports/daily', route: 'reports', decision: 'deny', reason, status: 401 }));
    return { actor: actorOf(c), expected: ['forged-token-algorithm', 'forged-token-key'], also: ['credential-brute-force', 'error-ratio-spike'] };
  },

  'expired-credential-use': ({ ctx, t, i }) => {
    const c = i === 0 ? member(ctx, 'reporting') : stranger(ctx, `${TD}/old-cron`, 35);
    for (let k = 0; k < 15; k++) ctx.trace.add(t + k * 20_000, c, { method: 'GET', path: '/reports/daily', route: 'reports', decision: 'deny', reason: 'jwt_expired', status: 401 });
    return { actor: actorOf(c), expected: ['expired-credential-use'], also: ['error-ratio-spike'] };
  },

  'revoked-certificate': ({ ctx, t, i }) => {
    const c: Caller = { spiffe: null, pod: { ip: i === 0 ? '10.1.13.77' : `10.2.0.${ctx.r.int(2, 250)}`, cert: ctx.r.hex(64), later: [] } };
    for (let k = 0; k < 4; k++) {
      ctx.trace.add(t + k * 30_000, c, { type: 'tls_handshake', method: null, path: null, route: null, decision: 'deny', reason: 'peer_cert_revoked', status: 0, tls: 'peer_cert_revoked', bytesOut: 0 });
    }
    return { actor: `cert:${c.pod.cert.slice(0, 12)}`, expected: ['revoked-certificate-use'] };
  },

  'token-replay': ({ ctx, t, i, begin }) => {
    const u = 1 + i;
    // Keep the whole episode inside one token lifetime (the victim's token must still verify).
    let at = t;
    const since = userToken(u, at - 60_000).sinceRefresh;
    if (since > 10 * MIN) at += USER_TTL - since + 90_000;
    const jti = userToken(u, at - 60_000).jti;
    const web = member(ctx, 'web');
    ctx.trace.add(at - 60_000, web, { method: 'GET', path: '/cart', route: 'cart', sub: `user-${u}`, jti, bytesOut: 3000 });
    ctx.trace.add(at - 20_000, web, { method: 'GET', path: '/orders', sub: `user-${u}`, jti, bytesOut: 20_000 });
    begin();
    const c = i === 0 ? member(ctx, 'shipping') : stranger(ctx, `${DEV}/debug-shell-2`, 36);
    for (let k = 0; k < 6; k++) ctx.trace.add(at + k * 15_000, c, { method: 'GET', path: `/orders/${ctx.r.int(1000, 99999)}`, sub: `user-${u}`, jti, bytesOut: 2200 });
    return { actor: `jti:${jti}`, expected: ['token-replay'], also: ['lateral-movement', 'privilege-probing'] };
  },

  'lateral-movement': ({ ctx, t, i }) => {
    const name = i === 0 ? 'billing' : 'reporting';
    const c = member(ctx, name);
    const calls = ['GET /admin/users', `GET /customers/${ctx.r.int(1, 50000)}/payment-methods`, 'GET /internal/config', 'POST /refunds', 'GET /cart'];
    calls.forEach((call, k) => {
      const [method, path] = call.split(' ') as [string, string];
      ctx.trace.add(t + k * 25_000, c, { method, path, route: path.split('/')[1] ?? null, sub: `svc-${name}`, jti: svcToken(name, t).jti, bytesOut: 1800 });
    });
    return { actor: c.spiffe as string, expected: ['lateral-movement'], also: ['privilege-probing'] };
  },

  'volume-spike': ({ ctx, t, i }) => {
    const name = i === 0 ? 'shipping' : 'billing';
    const w = ctx.ws.get(name) as Workload;
    const rps = i === 0 ? 40 : 50;
    for (let s = 0; s < 180; s++) {
      for (let k = 0; k < rps; k++) {
        const at = t + s * 1000 + ctx.r.int(0, 999);
        const e = ctx.r.weighted(w.endpoints);
        ctx.trace.add(at, member(ctx, name), { method: e.method, path: e.path(ctx.r), route: e.route, sub: `svc-${name}`, jti: svcToken(name, at).jti, bytesOut: Math.round(ctx.r.lognormal(e.bytes, 0.5)) });
      }
    }
    return { actor: w.spiffe, expected: ['request-volume-spike'], also: ['service-volume-spike', 'response-exfiltration'] };
  },

  'error-ratio-spike': ({ ctx, t, i }) => {
    const name = i === 0 ? 'reporting' : 'mobile-bff';
    const per = i === 0 ? 1 : 2;
    for (let s = 0; s < 240; s++) {
      for (let k = 0; k < per; k++) {
        const at = t + s * 1000 + ctx.r.int(0, 999);
        const u = ctx.r.int(1, USERS);
        const sub = i === 0 ? 'svc-reporting' : `user-${u}`;
        const jti = i === 0 ? svcToken('reporting', at).jti : userToken(u, at, 'mobile-bff').jti;
        const path = i === 0 ? `/reports/${ctx.r.int(1, 999)}/export` : `/orders/${ctx.r.int(1000, 99999)}`;
        const denied = i === 1 || ctx.r.next() < 0.8;
        ctx.trace.add(at, member(ctx, name), { method: i === 0 ? 'POST' : 'DELETE', path, route: path.split('/')[1] ?? null, sub, jti, decision: denied ? 'deny' : 'allow', reason: denied ? 'authz_deny_rule' : 'allowed', status: denied ? 403 : 201, bytesOut: denied ? 120 : 2000 });
      }
    }
    return { actor: (ctx.ws.get(name) as Workload).spiffe, expected: ['error-ratio-spike'], also: ['lateral-movement', 'privilege-probing', 'request-volume-spike'] };
  },

  exfiltration: ({ ctx, t, i }) => {
    const name = i === 0 ? 'mobile-bff' : 'billing';
    const secs = i === 0 ? 300 : 240;
    for (let s = 0; s < secs; s++) {
      const n = i === 0 ? 3 : 1;
      for (let k = 0; k < n; k++) {
        const at = t + s * 1000 + ctx.r.int(0, 999);
        const u = ctx.r.int(1, USERS);
        const sub = i === 0 ? `user-${u}` : 'svc-billing';
        const jti = i === 0 ? userToken(u, at, 'mobile-bff').jti : svcToken('billing', at).jti;
        const path = i === 0 ? '/orders' : `/orders/${ctx.r.int(1000, 99999)}/items`;
        ctx.trace.add(at, member(ctx, name), { method: 'GET', path, sub, jti, bytesOut: Math.round(ctx.r.lognormal(i === 0 ? 3_000_000 : 5_000_000, 0.2)) });
      }
    }
    return { actor: (ctx.ws.get(name) as Workload).spiffe, expected: ['response-exfiltration'], also: ['request-volume-spike', 'service-volume-spike'] };
  },

  'path-traversal': ({ ctx, t, i }) => {
    const c = i === 0 ? stranger(ctx, null, 4) : stranger(ctx, `${DEV}/debug-shell-3`, 37);
    const probes: Req[] = [
      { rawPath: '/static/../../etc/passwd', path: '/etc/passwd', route: null, reason: 'route_not_found', status: 404 },
      { rawPath: '/%2e%2e/%2e%2e/etc/shadow', path: '/etc/shadow', route: null, reason: 'route_not_found', status: 404 },
      { rawPath: '/files/..%2f..%2fwin.ini', path: null, route: null, reason: 'path_encoded_slash', status: 400 },
      { rawPath: '/static/..%5c..%5cboot.ini', path: null, route: null, reason: 'path_encoded_backslash', status: 400 },
      { rawPath: '/img/%00../../etc/hosts', path: null, route: null, reason: 'path_nul_byte', status: 400 },
      { rawPath: '/%zz/../admin', path: null, route: null, reason: 'path_malformed_encoding', status: 400 },
      { rawPath: null, path: '/api/%252e%252e/%252e%252e/etc/passwd', route: 'orders', reason: 'authz_no_matching_rule', status: 403 },
      { rawPath: '/orders/1/../../../proc/self/environ', path: '/proc/self/environ', route: null, reason: 'route_not_found', status: 404 },
    ];
    probes.forEach((q, k) => ctx.trace.add(t + k * (i === 0 ? 8000 : 15_000), c, { method: 'GET', decision: 'deny', ...q }));
    return { actor: actorOf(c), expected: ['path-traversal-probing'], also: ['privilege-probing', 'lateral-movement', 'injection-probing', 'error-ratio-spike'] };
  },

  injection: ({ ctx, t, i }) => {
    const c = i === 0 ? stranger(ctx, `${DEV}/debug-shell-4`, 38) : member(ctx, 'web');
    const u = 300 + i;
    const sub = i === 0 ? null : `user-${u}`;
    const jti = sub === null ? null : userToken(u, t).jti;
    const paths = [
      "/orders/1'%20or%20'1'='1",
      '/search/%3Cscript%3Ealert(1)%3C/script%3E',
      '/orders/1%20union%20select%20card,cvv%20from%20payments',
      '/orders/1;drop%20table%20orders',
      '/orders/1%27--',
      '/customers/1%20and%20sleep(5)',
    ];
    paths.forEach((p, k) => ctx.trace.add(t + k * 12_000, c, { method: 'GET', path: p, sub, jti, ...(sub === null ? { decision: 'deny', reason: 'jwt_missing', status: 401 } : { status: 404, bytesOut: 90 }) }));
    return { actor: i === 0 ? actorOf(c) : `${actorOf(c)} (user-${u})`, expected: ['injection-probing'], also: ['path-traversal-probing', 'privilege-probing', 'lateral-movement', 'error-ratio-spike'] };
  },

  'path-confusion': ({ ctx, t, i }) => {
    const c = i === 0 ? member(ctx, 'shipping') : member(ctx, 'mobile-bff');
    const u = 320 + i;
    const sub = i === 0 ? 'svc-shipping' : `user-${u}`;
    const jti = i === 0 ? svcToken('shipping', t).jti : userToken(u, t, 'mobile-bff').jti;
    for (let k = 0; k < 2; k++) {
      const q: Req = { method: 'GET', rawPath: '/orders/%2e%2e/admin/users', path: '/admin/users', route: 'admin', sub, jti, decision: 'deny', reason: 'authz_deny_rule', status: 403 };
      const at = t + k * 30_000;
      ctx.trace.add(at, c, q);
      ctx.trace.add(at, c, { ...q, type: 'alarm', reason: 'path_confusion', alarm: { rawDecision: 'allow', rawRule: 'policy.csv:7: p, role:service, /orders/*, GET, allow' } });
    }
    return { actor: actorOf(c), expected: ['path-confusion'], also: ['path-traversal-probing', 'privilege-probing', 'lateral-movement'] };
  },

  'distributed-flood': ({ ctx, t, i }) => {
    const ips = i === 0 ? 60 : 40;
    const rps = i === 0 ? 3 : 5;
    const callers = Array.from({ length: ips }, () => stranger(ctx, null, 7));
    for (let s = 0; s < 180; s++) {
      for (const c of callers) {
        for (let k = 0; k < rps; k++) ctx.trace.add(t + s * 1000 + ctx.r.int(0, 999), c, { method: 'GET', path: `/orders/${ctx.r.int(1000, 99999)}`, decision: 'deny', reason: 'jwt_missing', status: 401 });
      }
    }
    return { actor: `${ips} addresses without certificates`, expected: ['service-volume-spike'] };
  },
};

// ---------------------------------------------------------------------------
// Assembly

/** UUIDv7-shaped, time-ordered ids from the seeded PRNG (RFC 9562 §5.7 layout). */
function assignIds(drafts: readonly Draft[], r: Rand): void {
  let lastMs = -1;
  let counter = 0;
  for (const d of drafts) {
    const ms = Math.floor(d.t);
    if (ms !== lastMs) {
      lastMs = ms;
      counter = 0;
    } else counter = Math.min(counter + 1, 0xfff);
    const ts = ms.toString(16).padStart(12, '0');
    const rnd = r.hex(16);
    const id = `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${counter.toString(16).padStart(3, '0')}-${'89ab'[Number.parseInt(rnd[0] as string, 16) & 3]}${rnd.slice(1, 4)}-${rnd.slice(4, 16)}`;
    d.ev.id = id;
    d.ev.requestId = id;
    d.ev.time = new Date(ms).toISOString();
  }
}

/** Generates the traces into `opts.out` (audit/ and labels.json) and returns the labels. */
export async function generateScenarios(opts: ScenarioOptions): Promise<Labels> {
  const seed = opts.seed ?? 1;
  const hours = opts.hours ?? 8;
  if (!(hours >= 3)) throw new TypeError('hours must be at least 3 (1h45m of learning before the first attack)');
  const r = new Rand(seed);
  const start = Date.UTC(2026, 2, 2, 5, 0, 0);
  const end = start + hours * HOUR;
  const trace = new Trace(r);
  const ws = new Map(workloads(r).map((w) => [w.name, w]));
  const ctx: Context = { trace, r, start, end, ws, user: userPicker(r), nearMisses: [], outages: [], rollouts: [] };

  nearMisses(ctx);
  normalTraffic(ctx);

  // Attacks after the learning period, in a seeded order, evenly spread.
  const kinds = Object.keys(ATTACKS);
  const plan = kinds.flatMap((k) => [0, 1].map((i) => ({ kind: k, i })));
  for (let j = plan.length - 1; j > 0; j--) {
    const k = r.int(0, j);
    [plan[j], plan[k]] = [plan[k] as (typeof plan)[number], plan[j] as (typeof plan)[number]];
  }
  const first = start + HOUR + 45 * MIN;
  const spacing = Math.floor((end - 30 * MIN - first) / plan.length);
  const attackDrafts: { label: Omit<AttackLabel, 'events' | 'start'>; drafts: Draft[] }[] = [];
  plan.forEach((p, n) => {
    let from = trace.drafts.length;
    const t = first + n * spacing + r.int(0, Math.floor(spacing / 4));
    const spec = (ATTACKS[p.kind] as AttackFn)({ ctx, t, i: p.i, begin: () => { from = trace.drafts.length; } });
    attackDrafts.push({
      label: { id: `${p.kind}#${p.i + 1}`, kind: p.kind, expected: spec.expected, also: spec.also ?? [], actor: spec.actor },
      drafts: trace.drafts.slice(from),
    });
  });

  // Ids follow start time; the log is written in completion order, as the gateway does.
  const drafts = trace.drafts.filter((d) => d.t >= start && d.t < end);
  drafts.sort((a, b) => a.t - b.t);
  assignIds(drafts, r);
  drafts.sort((a, b) => a.end - b.end || a.t - b.t);

  const attacks: AttackLabel[] = attackDrafts.map(({ label, drafts: ds }) => {
    const sorted = ds.filter((d) => d.ev.id !== '').sort((a, b) => a.t - b.t);
    return { ...label, start: new Date(Math.floor((sorted[0] as Draft).t)).toISOString(), events: sorted.map((d) => d.ev.id) };
  });
  const nearMissLabels = ctx.nearMisses.map((n) => (n.kind === 'retry-storm' || n.kind === 'deploy-new-routes'
    ? { ...n, events: drafts.filter((d) => { const s = Date.parse(n.start); return d.t >= s && d.t < s + (n.kind === 'retry-storm' ? 2 : 15) * MIN; }).length }
    : n));

  const auditDir = path.join(opts.out, 'audit');
  fs.rmSync(opts.out, { recursive: true, force: true });
  fs.mkdirSync(opts.out, { recursive: true });
  const clock = new ManualClock(end);
  const writer = new AuditWriter({ dir: auditDir, segmentBytes: 32 * 1024 * 1024, fsyncInterval: 60_000, checkpointInterval: 0, queueLimit: 1_000_000 }, { clock });
  await writer.open();
  for (let k = 0; k < drafts.length; k++) {
    writer.append((drafts[k] as Draft).ev);
    if (k % 100_000 === 99_999) await writer.flush();
  }
  await writer.close();

  const labels: Labels = {
    v: SCENARIO_VERSION, seed, hours,
    start: new Date(start).toISOString(), end: new Date(end).toISOString(),
    events: drafts.length,
    attackEvents: attacks.reduce((a, x) => a + x.events.length, 0),
    attacks,
    nearMisses: nearMissLabels,
  };
  fs.writeFileSync(path.join(opts.out, 'labels.json'), `${JSON.stringify(labels, null, 1)}\n`);
  return labels;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, seed: { type: 'string', default: '1' }, hours: { type: 'string', default: '8' } },
    strict: true,
  });
  // The default is where `npm run bench:detect` looks for (and reuses) traces.
  const out = values.out ?? `bench/.data/detect-s${values.seed}-h${values.hours}`;
  const t0 = performance.now();
  const labels = await generateScenarios({ out: path.resolve(out), seed: Number(values.seed), hours: Number(values.hours) });
  process.stdout.write(`${labels.events} events (${labels.attackEvents} in ${labels.attacks.length} attacks, ${labels.nearMisses.length} near-miss episodes) written to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
