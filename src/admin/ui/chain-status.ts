/**
 * Audit-chain verification on demand (`meshgate audit verify` from the UI):
 * one run at a time — a second request while one runs waits for the same
 * result instead of reading the whole log again — and the last result kept
 * for the status page.
 */
import { verifyAuditDir, type VerifyProblem } from '../../audit/verify.ts';
import { systemClock, type Clock } from '../../core/clock.ts';

/** The outcome of one verification. */
export interface ChainRun {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** True when the chain is intact up to its checkpoint. */
  readonly ok: boolean;
  readonly records: number;
  readonly segments: number;
  readonly lastSeq: number;
  /** The first bad record, when not ok. */
  readonly problem: VerifyProblem | null;
  readonly warnings: readonly string[];
  /** The checkpoint checked against (HEAD.json), or null. */
  readonly head: { readonly seq: number; readonly time: string } | null;
  /** Set when the log could not be read at all (e.g. ENOENT). */
  readonly error: string | null;
}

/** What the chain page shows. */
export interface ChainState {
  readonly running: boolean;
  readonly last: ChainRun | null;
}

/** Runs verifyAuditDir on demand and remembers the last result. */
export class ChainStatus {
  readonly #dir: string;
  readonly #clock: Clock;
  #last: ChainRun | null = null;
  #running: Promise<ChainRun> | undefined;

  constructor(auditDir: string, opts: { clock?: Clock } = {}) {
    this.#dir = auditDir;
    this.#clock = opts.clock ?? systemClock;
  }

  state(): ChainState {
    return { running: this.#running !== undefined, last: this.#last };
  }

  /** Verifies now (or joins the run in progress). */
  verify(): Promise<ChainRun> {
    this.#running ??= this.#run().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #run(): Promise<ChainRun> {
    const started = this.#clock.now();
    const iso = (ms: number): string => new Date(ms).toISOString();
    let run: ChainRun;
    try {
      const r = await verifyAuditDir(this.#dir);
      const finished = this.#clock.now();
      run = {
        startedAt: iso(started), finishedAt: iso(finished), durationMs: finished - started,
        ok: r.ok, records: r.records, segments: r.segments.length, lastSeq: r.lastSeq,
        problem: r.problem ?? null, warnings: r.warnings,
        head: r.head ? { seq: r.head.seq, time: r.head.time } : null,
        error: null,
      };
    } catch (err) {
      const finished = this.#clock.now();
      const code = (err as NodeJS.ErrnoException).code;
      run = {
        startedAt: iso(started), finishedAt: iso(finished), durationMs: finished - started,
        ok: false, records: 0, segments: 0, lastSeq: 0, problem: null, warnings: [], head: null,
        error: `the audit log cannot be read${code ? ` (${code})` : ''}`,
      };
    }
    this.#last = run;
    return run;
  }
}
