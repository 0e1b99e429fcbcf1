import type { JWTPayload } from 'jose';
import type { Clock } from '../../src/clock.js';
import type { KeywardenConfig } from '../../src/config/schema.js';
import type { Logger } from '../../src/logging/logger.js';
import type { Store } from '../../src/store/store.js';
import { checkChannelToken, type AuthRefusalReason, type InboundActivityFacts } from './channel-token.js';
import { SigningKeys } from './signing-keys.js';

/**
 * The gate in front of the adapter: checks the Bot Connector token ourselves with bounded waits, caps how many
 * unauthenticated requests are being checked at once, and audits every refusal (rate-limited, so a flood of forged
 * requests cannot flood the audit log). The adapter then trusts our result instead of fetching keys itself.
 */

export type InboundDecision =
  | { kind: 'authenticated'; claims: JWTPayload }
  | { kind: 'anonymous' }
  | { kind: 'refused'; reason: AuthRefusalReason; message: string }
  | { kind: 'unavailable'; code: 'AuthBusy' | 'AuthTimeout' | 'SigningKeysUnavailable'; message: string; retryAfterSeconds: number };

export interface InboundAuthenticatorOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** False while this replica may not write (fenced): refusals are then only logged, never audited. */
  mayWrite?: () => boolean;
}

/** Refusals audited per minute before the rest are only counted (and the count audited with the next one). */
const AUDITS_PER_MINUTE = 60;

export class InboundAuthenticator {
  readonly authenticated: boolean;
  private readonly keys: SigningKeys | undefined;
  private checking = 0;
  private auditWindow = { start: 0, written: 0, suppressed: 0 };
  private readonly log: Logger;

  constructor(private readonly options: InboundAuthenticatorOptions) {
    const { config, clock, logger } = options;
    this.log = logger.child({ component: 'bot-inbound-auth' });
    this.authenticated = Boolean(config.bot.appId?.trim());
    this.keys = this.authenticated
      ? new SigningKeys({
        metadataUrl: config.bot.inbound.openIdMetadataUrl,
        fetchTimeoutMs: config.bot.inbound.keyFetchTimeoutSeconds * 1000,
        refreshMs: config.bot.inbound.keyRefreshMinutes * 60_000,
        clock, logger,
      })
      : undefined;
  }

  start(): void {
    this.keys?.start();
  }

  stop(): void {
    this.keys?.stop();
  }

  get keyStatus(): SigningKeys['status'] | undefined {
    return this.keys?.status;
  }

  async check(authorization: string | undefined, activity: InboundActivityFacts & { type?: string; fromAadObjectId?: string }): Promise<InboundDecision> {
    if (!this.keys) return { kind: 'anonymous' };
    const { inbound, appId, appType, tenantId } = this.options.config.bot;
    if (this.checking >= inbound.maxConcurrentChecks) {
      this.log.warn({ checking: this.checking }, 'too many requests are being authenticated at once; answering 503');
      return { kind: 'unavailable', code: 'AuthBusy', message: 'Too many requests are being authenticated right now; retry shortly.', retryAfterSeconds: 5 };
    }
    this.checking++;
    // Metadata and keys are two fetches; one more second covers the signature check itself.
    const budgetMs = inbound.keyFetchTimeoutSeconds * 2000 + 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), budgetMs); timer.unref(); });
      const result = await Promise.race([
        checkChannelToken(authorization, activity, { appId: appId!.trim(), issuer: inbound.issuer, tenantId: appType === 'MultiTenant' ? undefined : tenantId }, this.keys),
        deadline,
      ]);
      if (result === 'timeout') {
        return { kind: 'unavailable', code: 'AuthTimeout', message: 'The request could not be authenticated in time; retry shortly.', retryAfterSeconds: 10 };
      }
      if (result.ok) return { kind: 'authenticated', claims: result.claims };
      if (result.status === 503) {
        this.log.warn({ keys: this.keys.status }, 'could not authenticate a request: the Bot Framework signing keys are unavailable');
        return { kind: 'unavailable', code: 'SigningKeysUnavailable', message: `Keywarden cannot check tokens right now (${result.message}).`, retryAfterSeconds: 30 };
      }
      this.auditRefusal(result.reason, activity, result.kid);
      return { kind: 'refused', reason: result.reason, message: result.message };
    } finally {
      clearTimeout(timer);
      this.checking--;
    }
  }

  private auditRefusal(reason: AuthRefusalReason, activity: InboundActivityFacts & { type?: string; fromAadObjectId?: string }, kid?: string): void {
    const now = this.options.clock.now();
    const w = this.auditWindow;
    if (now - w.start >= 60_000) this.auditWindow = { start: now, written: 0, suppressed: w.suppressed };
    this.log.warn({ reason, channelId: activity.channelId, activityType: activity.type }, 'refused a request without a valid Bot Framework token');
    if (this.auditWindow.written >= AUDITS_PER_MINUTE || !this.options.store.isOpen || this.options.mayWrite?.() === false) {
      this.auditWindow.suppressed++;
      return;
    }
    this.auditWindow.written++;
    const suppressed = this.auditWindow.suppressed;
    this.auditWindow.suppressed = 0;
    // The claimed user is untrusted (the token did not verify): it goes in details, never as the actor.
    this.options.store.appendAudit({
      action: 'bot.request.refused', result: 'refused', subject: 'api/messages',
      details: {
        reason, activityType: activity.type?.slice(0, 40), channelId: activity.channelId?.slice(0, 40),
        serviceUrl: activity.serviceUrl?.slice(0, 200), claimedUser: activity.fromAadObjectId?.slice(0, 64), kid: kid?.slice(0, 80),
        ...(suppressed > 0 ? { refusalsNotAuditedBefore: suppressed } : {}),
      },
    });
  }
}
