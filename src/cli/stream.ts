/**
 * `meshgate stream <sub>`: operating the NATS JetStream scale-out
 * (docs/operations.md). `setup` creates or checks the audit stream before a
 * rollout; `status` shows where events and partitions stand.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { loadConfig, ConfigError } from '../config/load.ts';
import type { Config, NatsSinkConfig } from '../config/schema.ts';
import { auditStreamSpec, ensureAuditStream, StreamMismatchError } from '../stream/audit-stream.ts';
import { connectNats, type NatsConnection } from '../stream/connect-nats.ts';
import { CURSOR_FILE, readCursor } from '../stream/cursor-file.ts';
import { openDecisionsBucket } from '../stream/decisions-kv.ts';
import { durableName } from '../stream/subjects.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CliIO, type Command } from './command.ts';

const HELP = `Usage: meshgate stream <setup|status> -c FILE [--json] [--timeout 5s]

Operates the NATS JetStream scale-out configured in audit.sink.nats of FILE
(docs/operations.md).

  setup   create the audit stream and the decisions bucket when missing, or
          check the existing stream against the config; every mismatch that
          would break a guarantee is listed (exit 1)
  status  the stream (events, bytes, seq range), each partition's durable
          consumer (pending events, owner), live analyzer replicas, and this
          gateway's shipper cursor

Options:
  -c, --config FILE  meshgate configuration (required)
      --json         machine-readable output
      --timeout T    how long to wait for NATS (default 5s)
  -h, --help         show this help

Exit codes: 0 ok, 1 NATS unreachable or the stream does not match, 2 usage or configuration error.
`;

async function withNats<T>(cfg: NatsSinkConfig, timeoutMs: number, fn: (nc: NatsConnection, jsm: JetStreamManager) => Promise<T>): Promise<T | undefined> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let nc: NatsConnection | undefined;
  try {
    nc = await connectNats(cfg, { name: 'meshgate-cli', signal: abort.signal, reconnect: false }).catch(() => undefined);
    clearTimeout(timer);
    if (!nc) return undefined;
    return await fn(nc, await jetstreamManager(nc));
  } finally {
    clearTimeout(timer);
    await nc?.close().catch(() => {});
  }
}

async function status(cfg: Config, nats: NatsSinkConfig, nc: NatsConnection, jsm: JetStreamManager): Promise<Record<string, unknown>> {
  const info = await jsm.streams.info(nats.stream);
  const a = nats.analyzer;
  const kvm = new Kvm(nc);
  const holders = new Map<number, string>();
  const members: string[] = [];
  try {
    const leases = await kvm.open(a.leaseBucket);
    for await (const k of await leases.keys()) {
      const e = await leases.get(k);
      if (!e || e.operation !== 'PUT') continue;
      if (k.startsWith('member.')) members.push(k.slice('member.'.length));
      else if (k.startsWith('lease.p')) holders.set(Number(k.slice('lease.p'.length)), (e.json<{ owner: string }>()).owner);
    }
  } catch {
    // No analyzer has run yet: no lease bucket.
  }
  const partitions = [];
  for (let p = 0; p < nats.partitions; p++) {
    const ci = await jsm.consumers.info(nats.stream, durableName(a.durablePrefix, p)).catch(() => undefined);
    partitions.push({ partition: p, owner: holders.get(p) ?? null, pending: ci?.num_pending ?? null, ackPending: ci?.num_ack_pending ?? null, ackFloor: ci?.ack_floor.stream_seq ?? null });
  }
  const cursor = await readCursor(nats.cursorFile ?? path.join(cfg.audit.dir, CURSOR_FILE)).catch(() => undefined);
  return {
    stream: { name: nats.stream, messages: info.state.messages, bytes: info.state.bytes, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, description: info.config.description ?? null },
    replicas: members.sort(),
    partitions,
    shipper: cursor ? { logId: cursor.logId, cursorSeq: cursor.seq } : null,
  };
}

export const streamCommand: Command = {
  name: 'stream',
  summary: 'NATS JetStream scale-out: stream setup | status',
  help: HELP,
  async run(argv: string[], io: CliIO): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub !== 'setup' && sub !== 'status') throw new UsageError(sub === undefined ? 'missing subcommand (setup or status)' : `unknown subcommand '${sub}'`);
    const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false }, timeout: { type: 'string', default: '5s' } }, strict: true });
    if (!values.config) throw new UsageError('missing -c FILE');
    const { parseDuration } = await import('../core/duration.ts');
    const timeoutMs = parseDuration(values.timeout);
    if (timeoutMs === undefined) throw new UsageError(`--timeout: expected a duration such as 5s, got ${values.timeout}`);
    let cfg: Config;
    try {
      cfg = await loadConfig(values.config, io.env, { cwd: io.cwd, fileName: values.config });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      io.stderr.write(`${err.message}\n`);
      return EXIT_USAGE;
    }
    const nats = cfg.audit.sink?.nats;
    if (!nats) {
      io.stderr.write(`meshgate stream: ${values.config} has no audit.sink.nats section\n`);
      return EXIT_USAGE;
    }
    try {
      const out = await withNats(nats, timeoutMs, async (nc, jsm) => {
        if (sub === 'setup') {
          const { created, info } = await ensureAuditStream(jsm, auditStreamSpec(nats));
          await openDecisionsBucket(nc, nats.decisionsBucket);
          return { stream: nats.stream, created, subjects: info.config.subjects, partitions: nats.partitions, decisionsBucket: nats.decisionsBucket };
        }
        return status(cfg, nats, nc, jsm);
      });
      if (out === undefined) {
        io.stderr.write(`meshgate stream ${sub}: NATS not reachable at ${nats.servers.join(', ')} within ${values.timeout}\n`);
        return EXIT_FAILED;
      }
      io.stdout.write(values.json ? `${JSON.stringify(out, null, 2)}\n` : render(sub, out));
      return EXIT_OK;
    } catch (err) {
      if (err instanceof StreamMismatchError) {
        io.stderr.write(`meshgate stream ${sub}: ${err.message}\n`);
        return EXIT_FAILED;
      }
      io.stderr.write(`meshgate stream ${sub}: ${(err as Error).message}\n`);
      return EXIT_FAILED;
    }
  },
};

function render(sub: 'setup' | 'status', out: Record<string, unknown>): string {
  if (sub === 'setup') {
    return `${out['created'] ? 'created' : 'checked'} stream ${String(out['stream'])} (${(out['subjects'] as string[]).join(', ')}, ${String(out['partitions'])} partitions); decisions bucket ${String(out['decisionsBucket'])}\n`;
  }
  const s = out['stream'] as Record<string, unknown>;
  const lines = [`stream ${String(s['name'])}: ${String(s['messages'])} events, ${String(s['bytes'])} bytes, seq ${String(s['firstSeq'])}..${String(s['lastSeq'])}`];
  lines.push(`replicas: ${(out['replicas'] as string[]).join(', ') || '(none)'}`);
  for (const p of out['partitions'] as Record<string, unknown>[]) {
    lines.push(`  p${String(p['partition']).padEnd(4)} owner ${String(p['owner'] ?? '-').padEnd(30)} pending ${String(p['pending'] ?? '-')}`);
  }
  const sh = out['shipper'] as Record<string, unknown> | null;
  lines.push(sh ? `shipper: log ${String(sh['logId'])} acknowledged up to seq ${String(sh['cursorSeq'])}` : 'shipper: no cursor yet');
  return `${lines.join('\n')}\n`;
}
