/**
 * Health of a reloadable component (TLS material, JWKS, policy, …), shown in
 * `/readyz` detail and turned into metrics by the admin module.
 */
export interface ComponentStatus {
  readonly name: string;
  /** False when the component cannot serve at all (no good material ever loaded, keys past max staleness). */
  readonly ready: boolean;
  /** Short state word: `ok`, `stale`, `degraded`, `unavailable`. */
  readonly state: string;
  /** Last successful (re)load, ISO 8601. */
  readonly lastLoad: string | undefined;
  /** Message of the last rejected reload (file and reason; never secrets). */
  readonly lastError: string | undefined;
  readonly reloads: number;
  readonly reloadFailures: number;
  /** Version of what is in use (content hash) when meaningful. */
  readonly version?: string | undefined;
  /** Policy components: the engine deciding, and why casbin serves instead of the compiled index. */
  readonly engine?: { readonly name: string; readonly fallbackReason?: string | undefined } | undefined;
}

/** Mutable counterpart used inside a component. */
export class StatusTracker {
  readonly name: string;
  ready = false;
  state = 'unavailable';
  lastLoad: string | undefined;
  lastError: string | undefined;
  reloads = 0;
  reloadFailures = 0;
  version: string | undefined;
  engine: ComponentStatus['engine'];

  constructor(name: string) { this.name = name; }

  loaded(version?: string, at = new Date()): void {
    this.ready = true;
    this.state = 'ok';
    this.lastLoad = at.toISOString();
    this.lastError = undefined;
    this.version = version;
    this.reloads++;
  }

  failed(message: string): void {
    this.lastError = message;
    this.reloadFailures++;
    if (this.ready) this.state = 'degraded';
  }

  snapshot(): ComponentStatus {
    return {
      name: this.name, ready: this.ready, state: this.state, lastLoad: this.lastLoad, lastError: this.lastError,
      reloads: this.reloads, reloadFailures: this.reloadFailures, version: this.version,
      ...(this.engine ? { engine: this.engine } : {}),
    };
  }
}
