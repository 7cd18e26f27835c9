/**
 * The alerts the analyzer raised, as a reviewer sees them: alerts.jsonl
 * upserted by id (the last emission of an id is the alert, docs/alerts.md),
 * joined with acknowledgements. The file is re-read only when it changed.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ALERTS_FILE, readAlertLines } from '../../analyzer/sinks/alerts-log.ts';
import type { Alert, Severity } from '../../analyzer/types.ts';

/** Severities, lowest first. */
export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

/** Alerts of one state folder, newest last-seen first. */
export class AlertIndex {
  readonly file: string;
  #cache: { fp: string; alerts: Alert[]; skipped: number } | undefined;

  constructor(analyzerDir: string) {
    this.file = path.join(analyzerDir, ALERTS_FILE);
  }

  /** Every alert (one per id), newest `lastSeen` first, and how many lines could not be read. */
  async list(): Promise<{ alerts: readonly Alert[]; skipped: number }> {
    const fp = await this.#fingerprint();
    if (this.#cache?.fp === fp) return this.#cache;
    const byId = new Map<string, Alert>();
    const counter = { skipped: 0 };
    for await (const l of readAlertLines(this.file, 0, counter)) {
      const earlier = byId.get(l.alert.id);
      // A later emission without decisionId (e.g. a window-close update) still belongs to that decision.
      const decisionId = l.alert.decisionId ?? earlier?.decisionId;
      byId.set(l.alert.id, decisionId === undefined ? l.alert : { ...l.alert, decisionId });
    }
    const alerts = [...byId.values()].sort((a, b) => Date.parse(b.lastSeen) - Date.parse(a.lastSeen) || (a.id < b.id ? -1 : 1));
    this.#cache = { fp, alerts, skipped: counter.skipped };
    return this.#cache;
  }

  /** The alert with exactly this id. */
  async get(id: string): Promise<Alert | undefined> {
    return (await this.list()).alerts.find((a) => a.id === id);
  }

  async #fingerprint(): Promise<string> {
    try {
      const s = await stat(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }
}
