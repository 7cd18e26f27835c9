/**
 * Prometheus metrics. The request path only increments pre-labelled
 * children; component health (reloads, JWKS staleness, audit queue) is read
 * at scrape time through collect callbacks, so it costs nothing per request.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ComponentStatus } from '../core/status.ts';

export interface AnalyzerMetrics {
  readonly eventsProcessed: number;
  readonly lagEvents: number;
  readonly lagSeconds: number;
  readonly alerts: number;
  readonly decisions: number;
}

export interface MetricSources {
  components: () => ComponentStatus[];
  /** The embedded analyzer's last report, when it runs. */
  analyzer?: () => AnalyzerMetrics | undefined;
  /** The audit writer's counters; absent in a cluster worker (the primary owns the writer and these metrics). */
  audit?: (() => { queued: number; written: number; errors: number; dropped: number }) | undefined;
  inflight: () => number;
  certNotAfter: () => Date | undefined;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'decision' | 'reason' | 'status'>;
  readonly #latency: Histogram<'route' | 'decision'>;
  readonly #handshakeFailures: Counter<'reason'>;
  readonly #shadowAllow: Counter;
  readonly #shadowDeny: Counter;
  readonly #shadowMismatch: Counter;
  readonly #alarms: Counter<'reason'>;
  readonly #children = new Map<string, { inc: () => void; observe: (v: number) => void }>();

  constructor(sources: MetricSources, withDefaults = true) {
    const registers = [this.registry];
    if (withDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'meshgate_process_' });
    this.#requests = new Counter({ name: 'meshgate_requests_total', help: 'Requests by route, decision, reason and status', labelNames: ['route', 'decision', 'reason', 'status'], registers });
    this.#latency = new Histogram({
      name: 'meshgate_request_duration_seconds', help: 'Request latency through meshgate (until the response is complete)',
      labelNames: ['route', 'decision'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers,
    });
    this.#shadowAllow = new Counter({ name: 'meshgate_shadow_allow_total', help: 'Requests the shadow policy would allow', registers });
    this.#shadowDeny = new Counter({ name: 'meshgate_shadow_deny_total', help: 'Requests the shadow policy would deny', registers });
    this.#shadowMismatch = new Counter({ name: 'meshgate_shadow_mismatch_total', help: 'Requests where the shadow and enforced decisions differ', registers });
    this.#alarms = new Counter({ name: 'meshgate_alarms_total', help: 'High-severity alarms (path_confusion) by reason', labelNames: ['reason'], registers });
    this.#handshakeFailures = new Counter({ name: 'meshgate_tls_handshake_failures_total', help: 'Refused TLS handshakes by reason', labelNames: ['reason'], registers });
    new Counter({
      name: 'meshgate_reloads_total', help: 'Reloads of TLS material, JWKS and policy by result', labelNames: ['component', 'result'], registers,
      collect() {
        this.reset();
        for (const c of sources.components()) {
          this.inc({ component: c.name, result: 'success' }, c.reloads);
          this.inc({ component: c.name, result: 'failure' }, c.reloadFailures);
        }
      },
    });
    new Gauge({
      name: 'meshgate_component_ready', help: '1 when the component can serve (TLS, JWKS per issuer, policy)', labelNames: ['component', 'state'], registers,
      collect() {
        this.reset();
        for (const c of sources.components()) this.set({ component: c.name, state: c.state }, c.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'meshgate_policy_engine', help: '1 for the authorization engine serving each policy (compiled index or casbin fallback)', labelNames: ['component', 'engine'], registers,
      collect() {
        this.reset();
        for (const c of sources.components()) if (c.engine) this.set({ component: c.name, engine: c.engine.name }, 1);
      },
    });
    new Gauge({
      name: 'meshgate_jwks_stale', help: '1 while an issuer serves stale keys during a JWKS outage', labelNames: ['component'], registers,
      collect() {
        this.reset();
        for (const c of sources.components()) if (c.name.startsWith('jwks')) this.set({ component: c.name }, c.state === 'stale' ? 1 : 0);
      },
    });
    const analyzerGauge = (name: string, help: string, pick: (a: AnalyzerMetrics) => number): void => {
      const read = sources.analyzer;
      if (read) new Gauge({ name, help, registers, collect() { const a = read(); if (a) this.set(pick(a)); } });
    };
    analyzerGauge('meshgate_analyzer_events_processed', 'Audit events the embedded analyzer has processed', (a) => a.eventsProcessed);
    analyzerGauge('meshgate_analyzer_lag_events', 'Audit events written but not yet analyzed', (a) => a.lagEvents);
    analyzerGauge('meshgate_analyzer_lag_seconds', 'Event-time lag of the analyzer behind the audit log', (a) => a.lagSeconds);
    analyzerGauge('meshgate_analyzer_alerts', 'Alerts raised since the analyzer started', (a) => a.alerts);
    analyzerGauge('meshgate_analyzer_decisions', 'Quarantine decisions ordered since the analyzer started', (a) => a.decisions);
    const audit = sources.audit;
    if (audit) {
      new Gauge({ name: 'meshgate_audit_queue_events', help: 'Audit events waiting to be written', registers, collect() { this.set(audit().queued); } });
      new Gauge({ name: 'meshgate_audit_written_events', help: 'Audit events written since start', registers, collect() { this.set(audit().written); } });
      new Gauge({ name: 'meshgate_audit_write_errors', help: 'Audit write errors since start', registers, collect() { this.set(audit().errors); } });
      new Gauge({ name: 'meshgate_audit_dropped_events', help: 'Audit events dropped because the queue limit was hit', registers, collect() { this.set(audit().dropped); } });
    }
    new Gauge({ name: 'meshgate_inflight_requests', help: 'Requests being processed', registers, collect() { this.set(sources.inflight()); } });
    new Gauge({
      name: 'meshgate_tls_cert_expiry_timestamp_seconds', help: 'notAfter of the serving certificate', registers,
      collect() { const d = sources.certNotAfter(); if (d) this.set(d.getTime() / 1000); },
    });
  }

  /** Records one finished request (a pre-labelled child per label set). */
  request(route: string, decision: string, reason: string, status: number, seconds: number): void {
    const key = `${route}\0${decision}\0${reason}\0${status}`;
    let child = this.#children.get(key);
    if (!child) {
      const counter = this.#requests.labels({ route, decision, reason, status: String(status) });
      const histogram = this.#latency.labels({ route, decision });
      child = { inc: () => counter.inc(), observe: (v) => histogram.observe(v) };
      this.#children.set(key, child);
    }
    child.inc();
    child.observe(seconds);
  }

  /** Counts a shadow-policy decision (meshgate_shadow_allow_total / _deny_total / _mismatch_total). */
  shadow(allowed: boolean, mismatch: boolean): void {
    (allowed ? this.#shadowAllow : this.#shadowDeny).inc();
    if (mismatch) this.#shadowMismatch.inc();
  }

  alarm(reason: string): void {
    this.#alarms.inc({ reason });
  }

  handshakeFailure(reason: string): void {
    this.#handshakeFailures.inc({ reason });
  }
}
