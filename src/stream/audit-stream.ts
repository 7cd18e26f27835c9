/**
 * The JetStream stream of audit events: created at start-up when missing,
 * checked when present. An existing stream is never changed behind its
 * operator's back; what would break meshgate's guarantees is an error
 * (StreamMismatchError, listing every problem at once), what only differs
 * from the config (limits, replicas) is a warning.
 *
 * The partition count is part of the wire contract between shippers and
 * analyzer replicas (src/stream/subjects.ts), so it is written into the
 * stream's description (`partitions=N`; NATS 2.9 has no stream metadata) and
 * everybody checks their own setting against it.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import type { NatsSinkConfig } from '../config/schema.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { subjectCovers } from './subjects.ts';

/** What the audit stream must look like. */
export interface AuditStreamSpec {
  readonly name: string;
  readonly subjectPrefix: string;
  readonly partitions: number;
  readonly duplicateWindowMs: number;
  /** Shortest duplicate window that still covers the shipper's retry horizon. */
  readonly minDuplicateWindowMs: number;
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly replicas: number;
}

/** The audit stream cannot be used as configured; `problems` lists every reason. */
export class StreamMismatchError extends Error {
  readonly stream: string;
  readonly problems: readonly string[];
  constructor(stream: string, problems: readonly string[]) {
    super(`JetStream stream ${stream} does not match audit.sink.nats:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'StreamMismatchError';
    this.stream = stream;
    this.problems = problems;
  }
}

const NS = 1_000_000;

/** The stream spec for a sink config. The retry horizon is 4 ack timeouts (a publish, its retry after reconnect, and margin). */
export function auditStreamSpec(cfg: NatsSinkConfig): AuditStreamSpec {
  return {
    name: cfg.stream, subjectPrefix: cfg.subjectPrefix, partitions: cfg.partitions,
    duplicateWindowMs: cfg.duplicateWindow, minDuplicateWindowMs: Math.max(4 * cfg.ackTimeout, 10_000),
    maxAgeMs: cfg.maxAge, maxBytes: cfg.maxBytes, replicas: cfg.replicas,
  };
}

/** `partitions=N` from a stream description, or undefined. */
export function describedPartitions(description: string | undefined): number | undefined {
  const m = /\bpartitions=(\d+)\b/.exec(description ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The config a new audit stream is created with. */
export function auditStreamConfig(spec: AuditStreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: `meshgate audit events (partitions=${spec.partitions})`,
    subjects: [`${spec.subjectPrefix}.>`],
    storage: 'file' as StreamConfig['storage'],
    retention: 'limits' as StreamConfig['retention'],
    discard: 'old' as StreamConfig['discard'],
    max_age: spec.maxAgeMs * NS,
    max_bytes: spec.maxBytes,
    duplicate_window: spec.duplicateWindowMs * NS,
    num_replicas: spec.replicas,
  };
}

/** Compares an existing stream with the spec: errors break guarantees, warnings are differences only. */
export function checkAuditStream(existing: Pick<StreamConfig, 'subjects' | 'storage' | 'retention' | 'duplicate_window' | 'max_age' | 'max_bytes' | 'num_replicas' | 'description'>, spec: AuditStreamSpec): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const wanted = `${spec.subjectPrefix}.*.*.*`;
  if (!(existing.subjects ?? []).some((s) => subjectCovers(s, wanted))) {
    errors.push(`subjects ${JSON.stringify(existing.subjects ?? [])} do not capture ${spec.subjectPrefix}.> (events would not be stored)`);
  }
  if (existing.storage !== 'file') errors.push(`storage is ${existing.storage}, expected file (memory storage loses events when NATS restarts)`);
  if (existing.retention !== 'limits') errors.push(`retention is ${existing.retention}, expected limits (analyzer replicas and replays read the same events)`);
  const dupMs = Math.floor(existing.duplicate_window / NS);
  if (dupMs < spec.minDuplicateWindowMs) {
    errors.push(`duplicate_window is ${dupMs} ms, shorter than the shipper's retry horizon of ${spec.minDuplicateWindowMs} ms (4 × ackTimeout): retried events could be stored twice`);
  }
  const described = describedPartitions(existing.description);
  if (described !== undefined && described !== spec.partitions) {
    errors.push(`the stream is partitioned ${described} ways (description "partitions=${described}") but partitions is ${spec.partitions}: shippers and analyzers would disagree on where an identity's events go`);
  } else if (described === undefined) {
    warnings.push(`the stream's description does not record a partition count; make sure every shipper and analyzer uses partitions=${spec.partitions}`);
  }
  if (Math.floor(existing.max_age / NS) !== spec.maxAgeMs) warnings.push(`max_age is ${Math.floor(existing.max_age / NS)} ms, config says ${spec.maxAgeMs} ms (the stream's value applies)`);
  if (existing.max_bytes !== spec.maxBytes) warnings.push(`max_bytes is ${existing.max_bytes}, config says ${spec.maxBytes} (the stream's value applies)`);
  if (existing.num_replicas !== spec.replicas) warnings.push(`num_replicas is ${existing.num_replicas}, config says ${spec.replicas} (the stream's value applies)`);
  return { errors, warnings };
}

function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Creates the audit stream when it is missing, else checks it. Throws
 * StreamMismatchError when the existing stream breaks a guarantee; logs the
 * mere differences. Safe to call from many gateways at once.
 */
export async function ensureAuditStream(jsm: JetStreamManager, spec: AuditStreamSpec, log: Logger = silentLogger): Promise<{ created: boolean; info: StreamInfo }> {
  if (spec.duplicateWindowMs < spec.minDuplicateWindowMs) {
    throw new StreamMismatchError(spec.name, [`duplicateWindow ${spec.duplicateWindowMs} ms is shorter than the shipper's retry horizon of ${spec.minDuplicateWindowMs} ms (4 × ackTimeout)`]);
  }
  if (spec.maxAgeMs > 0 && spec.duplicateWindowMs > spec.maxAgeMs) {
    throw new StreamMismatchError(spec.name, [`duplicateWindow must not exceed maxAge`]);
  }
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(spec.name);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  if (!info) {
    try {
      info = await jsm.streams.add(auditStreamConfig(spec));
      log.info({ stream: spec.name, subjects: info.config.subjects, partitions: spec.partitions }, 'created the JetStream audit stream');
      return { created: true, info };
    } catch (err) {
      // Another gateway created it a moment ago: check theirs like any existing stream.
      info = await jsm.streams.info(spec.name).catch(() => undefined);
      if (!info) throw err;
    }
  }
  const { errors, warnings } = checkAuditStream(info.config, spec);
  for (const w of warnings) log.warn({ stream: spec.name }, `audit stream: ${w}`);
  if (errors.length > 0) throw new StreamMismatchError(spec.name, errors);
  return { created: false, info };
}
