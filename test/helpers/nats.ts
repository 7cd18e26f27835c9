/**
 * A real `nats-server -js` per test file, on 127.0.0.1 and a port the server
 * picks itself (`-p -1`, so there is no find-a-free-port race), with its store
 * in a temporary folder. `stop()` kills it (SIGKILL by default: the fault
 * tests want a crash, not a clean shutdown) and `restart()` brings it back on
 * the same port with the same store.
 *
 * Missing binary: outside CI the tests skip with an install hint; with
 * CI=true they fail, because a suite that silently skips is no suite.
 *
 *   const nats = await startNatsServer();
 *   … nats.url …
 *   await nats.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AckPolicy, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { after, before } from 'node:test';
import { connectNats } from '../../src/stream/connect-nats.ts';
import { newEventId, type AuditEvent, type AuditRecord } from '../../src/audit/event.ts';
import type { Alert, DetectionEngine, EngineOutput, RemediationOrder } from '../../src/analyzer/types.ts';
import { Puller } from '../../src/stream/puller.ts';

export const INSTALL_HINT = 'install nats-server: apt-get install -y nats-server';

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

/** Path of the nats-server binary ($NATS_SERVER, the Debian locations, then $PATH), or undefined. */
export function natsServerBinary(): string | undefined {
  const fromEnv = process.env['NATS_SERVER'];
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, 'nats-server'));
  for (const p of [...(fromEnv ? [fromEnv] : []), ...CANDIDATES, ...dirs]) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * The `skip` option for node:test suites that need nats-server: the install
 * hint when it is missing outside CI; `false` otherwise — in CI a missing
 * binary is not skipped, so `startNatsServer` fails the suite loudly.
 */
export function natsSkip(): string | false {
  if (natsServerBinary() !== undefined) return false;
  return process.env['CI'] === 'true' ? false : INSTALL_HINT;
}

export interface NatsServerOptions {
  /** nats-server configuration file text (auth, TLS, …); written into the temp folder and passed with -c. */
  readonly config?: string;
  /** Extra command-line arguments. */
  readonly args?: readonly string[];
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The temporary folder (store under `store/`). */
  readonly dir: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Kills the server (SIGKILL unless told otherwise) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port with the same store; resolves when it accepts connections. */
  restart(): Promise<void>;
  /** Stops it and removes the temp folder. */
  close(): Promise<void>;
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = tcpConnect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nats-server did not accept connections on port ${port}`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

/** Starts a JetStream-enabled nats-server for one test file. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = natsServerBinary();
  if (bin === undefined) throw new Error(`nats-server not found (${INSTALL_HINT})`);
  const dir = mkdtempSync(path.join(tmpdir(), 'meshgate-nats-'));
  const store = path.join(dir, 'store');
  const confArgs: string[] = [];
  if (opts.config !== undefined) {
    const conf = path.join(dir, 'nats.conf');
    writeFileSync(conf, opts.config);
    confArgs.push('-c', conf);
  }
  let child: ChildProcess | undefined;
  let port = -1;
  let log = '';

  const launch = async (): Promise<void> => {
    const p = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store, ...confArgs, ...(opts.args ?? [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = p;
    log = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 15_000);
      p.stderr?.setEncoding('utf8');
      p.stderr?.on('data', (chunk: string) => {
        log = (log + chunk).slice(-20_000);
        const m = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
        if (m && port < 0) port = Number(m[1]);
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${log}`));
      });
    });
    await ready;
    await waitForPort(port, Date.now() + 10_000);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = child;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill(signal);
    await exited;
  };

  // A test runner that exits (or crashes) must not leave a broker behind.
  const killOnExit = (): void => { child?.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  try {
    await launch();
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    get url() { return `nats://127.0.0.1:${port}`; },
    get port() { return port; },
    dir,
    get running() { return child !== undefined && child.exitCode === null && child.signalCode === null; },
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    close: async () => {
      process.off('exit', killOnExit);
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// A small deterministic detection engine for stream tests: the rule engine is
// built elsewhere, and these tests are about delivery, not detection. It
// raises one alert per identity and 10-second event-time window once that
// identity has `threshold` denied requests in it (the alert grows with later
// denials of the window), and orders a quarantine when asked to.
// ---------------------------------------------------------------------------

/** The identity the shipper partitions by: SPIFFE ID, else sub, else source ip. */
export function testIdentity(r: AuditRecord): string {
  return r.peer?.spiffeId || r.principal?.sub || r.source.ip;
}

interface WindowState { start: number; denies: number; evidence: string[]; first: string; last: string }

/** A DetectionEngine counting denials per identity in 10 s tumbling event-time windows. */
export class CountingEngine implements DetectionEngine {
  readonly threshold: number;
  readonly quarantineMs: number;
  #windows = new Map<string, WindowState>();
  processed = 0;

  constructor(opts: { threshold?: number; quarantineMs?: number } = {}) {
    this.threshold = opts.threshold ?? 5;
    this.quarantineMs = opts.quarantineMs ?? 0;
  }

  process(record: AuditRecord): EngineOutput {
    this.processed++;
    if (record.decision !== 'deny') return { alerts: [], remediations: [] };
    const who = testIdentity(record);
    const t = Date.parse(record.time);
    const start = t - (t % 10_000);
    let w = this.#windows.get(who);
    if (!w || w.start !== start) {
      w = { start, denies: 0, evidence: [], first: record.time, last: record.time };
      this.#windows.set(who, w);
    }
    w.denies++;
    w.last = record.time;
    if (w.evidence.length < 20) w.evidence.push(record.id);
    if (w.denies < this.threshold) return { alerts: [], remediations: [] };
    const alert: Alert = {
      v: 1, id: `a-${who}-${start}`.replace(/[^A-Za-z0-9_-]/g, '_'), rule: 'test-denials', severity: 'high', title: 'denials',
      scope: record.peer ? 'spiffe' : record.principal ? 'sub' : 'ip', value: who, firstSeen: w.first, lastSeen: w.last,
      count: w.denies, evidence: [...w.evidence], summary: `${w.denies} denials`,
    };
    const remediations: RemediationOrder[] = this.quarantineMs > 0 && w.denies === this.threshold
      ? [{ rule: alert.rule, alertId: alert.id, scope: alert.scope, value: alert.value, durationMs: this.quarantineMs, simulated: false }]
      : [];
    return { alerts: [alert], remediations };
  }

  snapshot(): unknown {
    return { processed: this.processed, windows: [...this.#windows] };
  }

  restore(state: unknown): void {
    const s = state as { processed: number; windows: [string, WindowState][] };
    this.processed = s.processed;
    this.#windows = new Map(s.windows);
  }
}

// ---------------------------------------------------------------------------
// Events and stream read-back.
// ---------------------------------------------------------------------------

/** Identities the test traffic rotates through: SPIFFE peers, token-only subjects and anonymous sources. */
export function testEvent(i: number, opts: { timeMs?: number; deny?: boolean; who?: number } = {}): AuditEvent {
  const who = opts.who ?? i % 7;
  const t = opts.timeMs ?? Date.now();
  const spiffe = who % 3 === 0 ? `spiffe://mesh.local/ns/default/sa/svc-${who}` : null;
  const sub = who % 3 === 1 ? `user-${who}` : null;
  const deny = opts.deny ?? i % 3 === 0;
  return {
    v: 1, type: 'request', id: newEventId(t), time: new Date(t).toISOString(), requestId: `req-${i}`,
    source: { ip: `10.0.${who}.1`, port: 40000 + (i % 1000) },
    peer: spiffe ? { spiffeId: spiffe, fingerprint: 'ab'.repeat(32) } : null,
    principal: sub ? { iss: 'https://issuer.mesh.local', sub } : null,
    jti: null, tokenHash: null, method: 'GET', path: `/orders/${i % 50}`, rawPath: null, route: 'orders',
    decision: deny ? 'deny' : 'allow', reason: deny ? 'authz_no_matching_rule' : 'allowed', rule: null, policyVersion: 'v1',
    status: deny ? 403 : 200, bytesIn: 0, bytesOut: 64, latencyMs: 1, shadow: null,
  };
}

/** A stored message of a stream, read back in stream order. */
export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly text: string;
}

/** Reads every message of `stream` (optionally only `filter`) in order, through a throw-away durable consumer. */
export async function readStream(nc: NatsConnection, stream: string, filter?: string): Promise<StoredMessage[]> {
  const jsm = await jetstreamManager(nc);
  const name = `verify-${Math.random().toString(36).slice(2, 10)}`;
  await jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.All, ...(filter ? { filter_subject: filter } : {}) });
  const puller = new Puller(nc, { stream, consumer: name, batch: 1000, expiresMs: 300 });
  const out: StoredMessage[] = [];
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const msgs = await puller.next();
      for (const m of msgs) out.push({ seq: m.streamSeq, subject: m.subject, text: decoder.decode(m.data) });
      const last = msgs[msgs.length - 1];
      if (last) puller.ack(last);
      if (!last || last.pending === 0) break;
    }
  } finally {
    puller.close();
    await jsm.consumers.delete(stream, name).catch(() => {});
  }
  return out;
}

/** Polls `check` until it returns true (or throws with `what` after `timeoutMs`). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The alert emissions an uninterrupted run produces: one engine per
 * partition fed that partition's records in log order, as replicas see them.
 * Returned as `<alert id>:<count>` strings.
 */
export function expectedEmissions(records: readonly AuditRecord[], partitions: number, partitionOf: (identity: string, n: number) => number, engine: () => DetectionEngine = () => new CountingEngine()): string[] {
  const engines = new Map<number, DetectionEngine>();
  const out: string[] = [];
  for (const r of records) {
    const p = partitionOf(testIdentity(r), partitions);
    let e = engines.get(p);
    if (!e) engines.set(p, (e = engine()));
    for (const a of e.process(r).alerts) out.push(`${a.id}:${a.count}`);
  }
  return out;
}

/** The live resources of a suite that uses `useNatsSuite`. */
export interface NatsSuiteFixture {
  readonly nats: NatsServer;
  /** A test-side connection that reconnects across broker restarts. */
  readonly nc: NatsConnection;
  /** A temporary folder, removed after the suite. */
  readonly root: string;
}

/**
 * Registers the before/after hooks every JetStream suite needs — a real
 * nats-server, a reconnecting client, a temp folder — and hands them to
 * `set` once they exist. Call inside the suite's `describe`.
 */
export function useNatsSuite(tmpPrefix: string, set: (f: NatsSuiteFixture) => void): void {
  let fixture: NatsSuiteFixture | undefined;
  before(async () => {
    const nats = await startNatsServer();
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    fixture = { nats, nc, root: mkdtempSync(path.join(tmpdir(), tmpPrefix)) };
    set(fixture);
  });
  after(async () => {
    await fixture?.nc.close();
    await fixture?.nats.close();
    if (fixture) rmSync(fixture.root, { recursive: true, force: true });
  });
}

/** The shipper's connection factory in tests: a new, non-reconnecting connection per round. */
export function shipperConnection(nats: NatsServer): ReturnType<typeof connectNats> {
  return connectNats({ servers: [nats.url] }, { name: 'test-shipper', reconnect: false });
}
