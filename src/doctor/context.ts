import type { TokenCredential } from '@azure/core-auth';
import type { Clock } from '../clock.js';
import { DAY_MS } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import { redactText } from '../logging/redact.js';
import { AzureRestError } from '../providers/entra/azure-rest.js';
import { DatabricksError } from '../providers/databricks/errors.js';
import { KeyVaultError } from '../providers/keyvault/errors.js';
import type { KeyVaultSecrets } from '../providers/keyvault/client.js';
import type { Store } from '../store/store.js';
import type { DoctorCheck } from './types.js';

/** What every estate's checks share: config, Keywarden's own credential, time, cancellation. */
export interface DoctorContext {
  config: KeywardenConfig;
  credential: TokenCredential;
  clock: Clock;
  /** Cancels the whole run (Ctrl-C); each call also gets its own timeout. */
  signal?: AbortSignal;
  /** Per call. */
  timeoutMs: number;
  /** One client per configured vault (PAT auth reads its token through them). */
  vaults: Map<string, KeyVaultSecrets>;
  /** Keywarden's application (client) id when known (config or the Graph token), for the fix commands. */
  identity: { clientId?: string; tenantId?: string; spObjectId?: string };
  /** Opt-in: prove OBO by creating a 5-minute `keywarden doctor probe` token and deleting it at once. */
  createProbeToken: boolean;
  /** The store, when one exists (channel references); undefined before Keywarden ever ran. */
  store?: Store;
}

/** A signal for one call: the run's signal plus a per-call timeout. */
export function callSignal(ctx: Pick<DoctorContext, 'signal' | 'timeoutMs'>): AbortSignal {
  const timeout = AbortSignal.timeout(ctx.timeoutMs);
  return ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
}

export type FailureKind = 'unreachable' | 'unauthenticated' | 'forbidden' | 'not-found' | 'other';

export interface ClassifiedFailure {
  kind: FailureKind;
  statusCode?: number;
  /** The provider's own message (already redacted), for the detail line. */
  message: string;
  /** The service's own short words (error code / server message), for "denied" lines whose fix we give ourselves. */
  said?: string;
}

const UNREACHABLE_DATABRICKS = new Set(['NETWORK_ERROR', 'TIMEOUT', 'ABORTED']);
const UNREACHABLE_KEYVAULT = new Set(['Unreachable', 'UntrustedCertificate', 'ChallengeMismatch', 'Aborted']);

/** Sorts any provider error into "can't reach", "who are you", "not allowed", "no such thing" or other. */
export function classifyFailure(err: unknown): ClassifiedFailure {
  const message = redactText(err instanceof Error ? err.message : String(err));
  if (err instanceof DatabricksError) {
    if (UNREACHABLE_DATABRICKS.has(err.code)) return { kind: 'unreachable', message };
    if (err.code === 'AUTH_FAILED' || err.statusCode === 401) return { kind: 'unauthenticated', statusCode: err.statusCode, message };
    if (err.statusCode === 403 && /invalid access token/i.test(`${err.serverMessage ?? ''} ${err.message}`)) {
      return { kind: 'unauthenticated', statusCode: 403, message };
    }
    if (err.statusCode === 403) return { kind: 'forbidden', statusCode: 403, message, said: `${err.code}: ${err.serverMessage ?? ''}`.replace(/: $/, '') };
    if (err.statusCode === 404) return { kind: 'not-found', statusCode: 404, message };
    return { kind: 'other', statusCode: err.statusCode, message };
  }
  if (err instanceof KeyVaultError) {
    if (UNREACHABLE_KEYVAULT.has(err.code)) return { kind: 'unreachable', message };
    if (err.code === 'Unauthorized') return { kind: 'unauthenticated', statusCode: err.statusCode, message };
    if (err.code === 'Forbidden') return { kind: 'forbidden', statusCode: err.statusCode, message, said: err.serviceCode ?? err.code };
    if (err.code === 'SecretNotFound') return { kind: 'not-found', statusCode: err.statusCode, message };
    return { kind: 'other', statusCode: err.statusCode, message };
  }
  if (err instanceof AzureRestError) {
    if (err.code === 'Timeout' || err.code === 'NetworkError') return { kind: 'unreachable', message };
    if (err.code === 'AuthenticationFailed' || err.statusCode === 401) return { kind: 'unauthenticated', statusCode: err.statusCode, message };
    if (err.statusCode === 403) return { kind: 'forbidden', statusCode: 403, message, said: err.code };
    if (err.statusCode === 404) return { kind: 'not-found', statusCode: 404, message };
    return { kind: 'other', statusCode: err.statusCode, message };
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return { kind: 'unreachable', message };
  // @azure/identity failures (CredentialUnavailableError, AuthenticationError) mean no token at all.
  if (err instanceof Error && /Credential|Authentication/i.test(err.name)) return { kind: 'unauthenticated', message };
  return { kind: 'other', message };
}

/** The first line of a provider message, short enough for a checklist. */
export function shortMessage(message: string, max = 220): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The detail line of a failed call: for a denial, the service's own words (the fix is ours, from deploy.md). */
export function failureDetail(f: ClassifiedFailure): string {
  if (f.kind === 'forbidden') return shortMessage(`denied (HTTP 403${f.said ? ` ${f.said}` : ''})`);
  return shortMessage(f.message);
}

/** Builds checks for one scope with the common fields filled in. */
export function checkMaker(estate: DoctorCheck['estate'], scope: string) {
  return (id: string, title: string, rest: Omit<DoctorCheck, 'id' | 'estate' | 'scope' | 'title'>): DoctorCheck => ({
    id: `${estate}.${id}`, estate, scope, title, ...rest,
  });
}

/** Checks that could not run because an earlier one (reachability, authentication) failed. */
export function skipped(make: ReturnType<typeof checkMaker>, items: Array<[id: string, title: string, required: boolean]>, because: string): DoctorCheck[] {
  return items.map(([id, title, required]) => make(id, title, { status: 'skip', required, detail: `not checked: ${because}` }));
}

/** Whole days from now to `at` (negative when past), rounding toward "less time left". */
export function daysLeft(at: number, now: number): number {
  return Math.floor((at - now) / DAY_MS);
}
