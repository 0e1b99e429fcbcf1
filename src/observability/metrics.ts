import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChatGateway } from '../domain/chat.js';
import { ChatDeliveryError } from '../domain/chat.js';
import { scanCountsOf, type ScanResult } from '../domain/scan.js';
import { isCallError, recordingFetch, recordingKeyVaultPolicy, type CallRecorder, type KeyVaultCallPolicy } from './calls.js';

export { recordingFetch, recordingKeyVaultPolicy, type CallRecorder, type CloudCall, type KeyVaultCallPolicy } from './calls.js';

/** Prometheus metrics for one Keywarden process (own registry, so tests and replicas never share counters). */
export class KeywardenMetrics {
  readonly registry = new Registry();
  readonly scans = new Counter({ name: 'keywarden_scans_total', help: 'Completed scans by trigger and outcome', labelNames: ['trigger', 'outcome'], registers: [this.registry] });
  readonly scanDuration = new Histogram({ name: 'keywarden_scan_duration_seconds', help: 'Wall time of a scan', buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120], registers: [this.registry] });
  readonly credentials = new Gauge({ name: 'keywarden_credentials', help: 'Credentials seen in the last scan by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly findings = new Gauge({ name: 'keywarden_findings', help: 'Findings in the last scan by code and severity', labelNames: ['code', 'severity'], registers: [this.registry] });
  readonly estateErrors = new Gauge({ name: 'keywarden_estate_errors', help: 'Estates that could not be scanned in the last scan', labelNames: ['estate'], registers: [this.registry] });
  readonly scanThread = new Gauge({ name: 'keywarden_scan_thread_running', help: 'Whether a scan thread (and its memory) exists: it ends scanner.threadIdleSeconds after its scan', registers: [this.registry] });
  readonly lastScan = new Gauge({ name: 'keywarden_last_scan_timestamp_seconds', help: 'When the last scan finished', registers: [this.registry] });
  readonly alerts = new Counter({ name: 'keywarden_alerts_total', help: 'Alert cards by operation (posted, updated, resolved)', labelNames: ['operation'], registers: [this.registry] });
  readonly actions = new Counter({ name: 'keywarden_actions_total', help: 'Approved actions by action and result', labelNames: ['action', 'result'], registers: [this.registry] });
  readonly calls = new Histogram({ name: 'keywarden_cloud_call_duration_seconds', help: 'Latency of calls to each estate', labelNames: ['estate', 'method', 'status'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  readonly callErrors = new Counter({ name: 'keywarden_cloud_call_errors_total', help: 'Failed calls to each estate (network errors and HTTP >= 400)', labelNames: ['estate', 'status'], registers: [this.registry] });
  readonly teamsSends = new Counter({ name: 'keywarden_teams_sends_total', help: 'Messages sent to Teams by operation and result', labelNames: ['operation', 'result'], registers: [this.registry] });
  readonly teamsLatency = new Histogram({ name: 'keywarden_teams_send_duration_seconds', help: 'Latency of sends to Teams', labelNames: ['operation'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });

  recordScan(result: ScanResult): void {
    this.scans.inc({ trigger: result.trigger, outcome: result.errors.length ? 'partial' : 'ok' });
    this.scanDuration.observe((result.finishedAt - result.startedAt) / 1000);
    // Counted while scanning: a metric never reads the estate.
    const counts = scanCountsOf(result);
    this.credentials.reset();
    for (const [kind, n] of Object.entries(counts.byKind)) this.credentials.inc({ kind }, n);
    this.findings.reset();
    for (const [key, n] of Object.entries(counts.findings)) {
      const [code, severity] = key.split('|') as [string, string];
      this.findings.inc({ code, severity }, n);
    }
    this.estateErrors.reset();
    for (const e of result.errors) this.estateErrors.inc({ estate: e.estate });
    this.lastScan.set(result.finishedAt / 1000);
  }

  /** One call to an estate: latency and, for a failure, an error (a scan thread reports its calls here). */
  readonly recordCall: CallRecorder = (call) => {
    this.calls.observe({ estate: call.estate, method: call.method, status: call.status }, call.seconds);
    if (isCallError(call)) this.callErrors.inc({ estate: call.estate, status: call.status });
  };

  /** A fetch that records latency and errors per estate; providers take it through their `fetch` option. */
  instrumentFetch(estate: string, inner: typeof fetch = fetch): typeof fetch {
    return recordingFetch(this.recordCall, estate, inner);
  }

  /** A Key Vault SDK pipeline policy (per retry) that records latency and errors like instrumentFetch. */
  keyVaultPolicy(): KeyVaultCallPolicy {
    return recordingKeyVaultPolicy(this.recordCall);
  }

  /** Wraps a ChatGateway so every send to Teams is counted and timed. */
  instrumentChat(gateway: ChatGateway): ChatGateway {
    const wrap = <A extends unknown[], R>(operation: string, fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
      const end = this.teamsLatency.startTimer({ operation });
      try {
        const r = await fn(...args);
        this.teamsSends.inc({ operation, result: 'ok' });
        return r;
      } catch (err) {
        this.teamsSends.inc({ operation, result: err instanceof ChatDeliveryError ? err.code : 'error' });
        throw err;
      } finally {
        end();
      }
    };
    return {
      post: wrap('post', gateway.post.bind(gateway)),
      replyInThread: wrap('reply', gateway.replyInThread.bind(gateway)),
      update: wrap('update', gateway.update.bind(gateway)),
      sendToUser: wrap('sendToUser', gateway.sendToUser.bind(gateway)),
    };
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
