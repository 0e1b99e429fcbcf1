import { DAY_MS, HOUR_MS } from '../clock.js';
import type { KeywardenConfig } from '../config/schema.js';
import type { Credential, CredentialKind, Estate, Finding, ScopeFacts, Severity } from './credential.js';
import { formatExpiry, formatUtcDate, isExpired, severityForThreshold, thresholdFor } from './expiry.js';

/** Policy: the findings a person should act on, each with a severity and a one-line remedy. Pure. */

export type PolicyConfig = KeywardenConfig['policy'];

/** The rules that apply to one credential after per-kind and per-scope overrides. */
export interface EffectivePolicy {
  thresholdsDays: number[];
  maxLifetimeDays: number;
  notRotatedDays: number;
  unusedDays: number;
}

/** Databricks auto-revokes PATs unused for this long; "unused" warns before it happens. */
export const DATABRICKS_AUTO_REVOKE_DAYS = 90;
/** KV exp and the real expiry may differ by this much before it is a finding (clock skew, rounding). */
export const KV_EXPIRY_TOLERANCE_MS = DAY_MS;
/** A lifetime may exceed a maximum by this much before it is a finding: clouds stamp creation and expiry apart. */
export const LIFETIME_TOLERANCE_MS = HOUR_MS;

const KIND_LABEL: Record<CredentialKind, string> = {
  'databricks-pat': 'Databricks PAT',
  'keyvault-secret': 'Key Vault secret',
  'entra-password': 'Entra client secret',
  'entra-certificate': 'Entra certificate',
};

export function kindLabel(kind: CredentialKind): string {
  return KIND_LABEL[kind];
}

/** Overrides apply from general to specific (kind only, scope only, both); among equals the later one wins. */
export function policyFor(policy: PolicyConfig, kind: CredentialKind, scope: string): EffectivePolicy {
  const effective: EffectivePolicy = {
    thresholdsDays: [...policy.thresholdsDays],
    maxLifetimeDays: policy.maxLifetimeDays[kind],
    notRotatedDays: policy.notRotatedDays,
    unusedDays: policy.unusedDays,
  };
  const specificity = (o: PolicyConfig['overrides'][number]) => (o.kind ? 1 : 0) + (o.scope ? 2 : 0);
  const matching = policy.overrides
    .map((o, i) => ({ o, i }))
    .filter(({ o }) => (!o.kind || o.kind === kind) && (!o.scope || o.scope === scope))
    .sort((a, b) => specificity(a.o) - specificity(b.o) || a.i - b.i);
  for (const { o } of matching) {
    if (o.thresholdsDays) effective.thresholdsDays = [...o.thresholdsDays];
    if (o.maxLifetimeDays !== undefined) effective.maxLifetimeDays = o.maxLifetimeDays;
    if (o.notRotatedDays !== undefined) effective.notRotatedDays = o.notRotatedDays;
    if (o.unusedDays !== undefined) effective.unusedDays = o.unusedDays;
  }
  return effective;
}

/** A scope's facts, as the scanner collected them. */
export interface ScopeInput {
  estate: Estate;
  scope: string;
  facts: ScopeFacts;
}

export interface PolicyInput {
  credentials: readonly Credential[];
  scopes?: readonly ScopeInput[];
  policy: PolicyConfig;
  now: number;
  /**
   * Held credentials by id, when `credentials` is one page of a larger estate (a streamed scan): what a Key Vault
   * secret's findings read of the credential it holds. Default: `credentials` themselves.
   */
  held?: { get(id: string): Credential | undefined };
  /** Only the credentials' findings: `scopes` give facts, their own findings come from evaluateScopePolicy. */
  credentialsOnly?: boolean;
}

const days = (ms: number) => Math.floor(ms / DAY_MS);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function heldText(c: Credential): string {
  return c.heldIn.length ? ` and store it in ${c.heldIn.map((r) => `${r.vault}/${r.name}`).join(', ')}` : '';
}

/** "Rotate it" in the words of each kind. */
function rotateRemedy(c: Credential): string {
  switch (c.kind) {
    case 'databricks-pat':
      return `Rotate: create a new token in ${c.where.label}${heldText(c)}, then revoke the old one (Rotate on the alert card).`;
    case 'keyvault-secret':
      return `Set a new version of ${c.where.scope}/${c.name} with a new expiry, and update what uses it.`;
    case 'entra-password':
      return `Rotate: add a new client secret to ${c.where.label}${heldText(c)}, then remove the old one after the grace window.`;
    case 'entra-certificate':
      return `Upload a new certificate to ${c.where.label}, move its users to it, then remove the old one.`;
  }
}

function finding(c: Credential, code: Finding['code'], severity: Severity, message: string, remedy: string): Finding {
  return { code, severity, credentialId: c.id, scope: c.where.scope, estate: c.where.estate, message, remedy };
}

/**
 * A secret that holds another scanned credential with the same expiry mirrors it: only the held one warns, and
 * views show the secret on that credential's row ("held in …"). With a different expiry both stay visible.
 */
export function mirrorsHeldCredential(c: Credential, byId: { get(id: string): Credential | undefined }): boolean {
  if (c.kind !== 'keyvault-secret' || !c.holds) return false;
  const held = byId.get(c.holds);
  return held !== undefined && !expiryMismatch(c.expiresAt, held.expiresAt);
}

/**
 * The credential a Key Vault secret's card folds into: the scanned credential it holds. The chain (secret → PAT or
 * client secret) gets one card, the held credential's; the secret's own findings show there.
 */
export function heldCredentialOf(c: Credential, byId: ReadonlyMap<string, Credential>): Credential | undefined {
  if (c.kind !== 'keyvault-secret' || !c.holds || c.holds === c.id) return undefined;
  return byId.get(c.holds);
}

export function expiryMismatch(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a !== b;
  return Math.abs(a - b) > KV_EXPIRY_TOLERANCE_MS;
}

function expiryFindings(c: Credential, rules: EffectivePolicy, now: number): Finding[] {
  if (c.expiresAt === null) {
    const severity: Severity = c.kind === 'databricks-pat' ? 'high' : 'medium';
    const remedy = c.kind === 'keyvault-secret'
      ? `Set an expiry date on ${c.where.scope}/${c.name} and rotate it before then.`
      : `Replace it with one that expires within ${rules.maxLifetimeDays} days, then revoke this one.`;
    return [finding(c, 'no-expiry', severity, `${kindLabel(c.kind)} ${c.name} in ${c.where.label} never expires.`, remedy)];
  }
  const threshold = thresholdFor(c, rules.thresholdsDays, now);
  if (threshold === null) return [];
  if (threshold === 'expired') {
    return [finding(c, 'expired', 'critical', `${kindLabel(c.kind)} ${c.name} in ${c.where.label} expired ${formatExpiry(c.expiresAt, now).replace(/^expired /, '')}.`,
      c.consumers.length ? rotateRemedy(c) : `${rotateRemedy(c)} If nothing uses it any more, delete it.`)];
  }
  return [finding(c, 'expiring', severityForThreshold(threshold),
    `${kindLabel(c.kind)} ${c.name} in ${c.where.label} expires ${formatExpiry(c.expiresAt, now)}.`, rotateRemedy(c))];
}

/** "180 days", or "180 days 5 hours" when the whole days alone would read as "not over" the maximum. */
function lifetimeText(ms: number, maxDays: number): string {
  const whole = days(ms);
  const hours = Math.floor((ms - whole * DAY_MS) / HOUR_MS);
  return whole <= maxDays && hours > 0 ? `${plural(whole, 'day')} ${plural(hours, 'hour')}` : plural(whole, 'day');
}

function lifetimeFinding(c: Credential, rules: EffectivePolicy, facts: ScopeFacts | undefined): Finding[] {
  if (c.expiresAt === null || c.createdAt === undefined) return [];
  const workspaceMax = c.kind === 'databricks-pat' && facts?.maxTokenLifetimeDays ? facts.maxTokenLifetimeDays : undefined;
  const max = workspaceMax !== undefined ? Math.min(workspaceMax, rules.maxLifetimeDays) : rules.maxLifetimeDays;
  const lifetime = c.expiresAt - c.createdAt;
  // Creation and expiry are stamped a moment apart: 180 days and half a second is not "over a 180-day maximum".
  if (lifetime <= max * DAY_MS + LIFETIME_TOLERANCE_MS) return [];
  const source = workspaceMax !== undefined && workspaceMax <= rules.maxLifetimeDays ? `the workspace maximum (maxTokenLifetimeDays ${workspaceMax})` : `the policy maximum of ${max} days`;
  return [finding(c, 'lifetime-too-long', 'medium',
    `${kindLabel(c.kind)} ${c.name} in ${c.where.label} lives ${lifetimeText(lifetime, max)}, over ${source}.`,
    `Replace it with one that expires within ${max} days, then revoke this one.`)];
}

function rotationFinding(c: Credential, rules: EffectivePolicy, now: number): Finding[] {
  if (c.createdAt === undefined) return [];
  const age = now - c.createdAt;
  if (age < rules.notRotatedDays * DAY_MS) return [];
  return [finding(c, 'not-rotated', 'medium',
    `${kindLabel(c.kind)} ${c.name} in ${c.where.label} was last rotated ${days(age)} days ago (policy: every ${rules.notRotatedDays} days).`,
    rotateRemedy(c))];
}

function unusedFinding(c: Credential, rules: EffectivePolicy, now: number): Finding[] {
  if (c.lastUsedAt === undefined) return [];
  const since = c.lastUsedAt ?? c.createdAt;
  if (since === undefined) return [];
  const idle = now - since;
  if (idle < rules.unusedDays * DAY_MS) return [];
  const idleDays = days(idle);
  const when = c.lastUsedAt === null ? `has never been used (created ${idleDays} days ago)` : `has not been used for ${idleDays} days`;
  if (c.kind === 'databricks-pat') {
    const revokeIn = Math.max(0, DATABRICKS_AUTO_REVOKE_DAYS - idleDays);
    return [finding(c, 'unused', revokeIn <= 14 ? 'high' : 'medium',
      `Databricks PAT ${c.name} in ${c.where.label} ${when}; Databricks revokes it automatically at ${DATABRICKS_AUTO_REVOKE_DAYS} days (${revokeIn === 0 ? 'now' : `in ${plural(revokeIn, 'day')}`}).`,
      'Revoke it if nothing needs it; if a job does, use it or rotate it so the automatic revocation does not break the job.')];
  }
  return [finding(c, 'unused', 'low', `${kindLabel(c.kind)} ${c.name} in ${c.where.label} ${when}.`, 'Revoke it if nothing needs it.')];
}

function ownerFindings(c: Credential): Finding[] {
  const out: Finding[] = [];
  if (c.owner && c.owner.active === false) {
    const who = c.owner.kind === 'unknown' ? `${c.owner.name}, who no longer exists` : `${c.owner.name}, who is deactivated`;
    out.push(finding(c, 'owner-deactivated', 'high',
      `${kindLabel(c.kind)} ${c.name} in ${c.where.label} belongs to ${who}.`,
      'Replace it with a credential owned by a service principal, move its users, then revoke this one.'));
  }
  if (c.kind === 'databricks-pat' && c.owner?.kind === 'user' && c.heldIn.length > 0 && c.consumers.length > 0) {
    const users = c.consumers.map((x) => x.name).join(', ');
    out.push(finding(c, 'human-owned-pipeline', 'high',
      `Databricks PAT ${c.name} in ${c.where.label} belongs to ${c.owner.name} but runs pipelines through ${c.heldIn.map((r) => `${r.vault}/${r.name}`).join(', ')} (${users}).`,
      `Replace it with a token owned by a service principal (on-behalf-of token) stored in the same secret, then revoke ${c.owner.name}'s token.`));
  }
  return out;
}

function kvMismatchFinding(c: Credential, byId: { get(id: string): Credential | undefined }): Finding[] {
  if (c.kind !== 'keyvault-secret' || !c.holds) return [];
  const held = byId.get(c.holds);
  if (!held || !expiryMismatch(c.expiresAt, held.expiresAt)) return [];
  const show = (ms: number | null) => (ms === null ? 'never' : formatUtcDate(ms));
  return [finding(c, 'kv-expiry-mismatch', 'medium',
    `Key Vault secret ${c.where.scope}/${c.name} says it expires ${show(c.expiresAt)}, but the ${kindLabel(held.kind)} it holds (${held.name} in ${held.where.label}) expires ${show(held.expiresAt)}.`,
    `Set the secret's expiry to ${show(held.expiresAt)} so warnings fire on the real date.`)];
}

function scopeFindings(scope: ScopeInput, policy: PolicyConfig, credentials: readonly Credential[]): Finding[] {
  const out: Finding[] = [...workspaceConfFindings(scope, policy, credentials)];
  const allowed = new Set(policy.patCreationAllowList.map((p) => p.toLowerCase()));
  const extra = (scope.facts.tokenUsers ?? []).filter((u) => !allowed.has(u.principal.toLowerCase()));
  if (extra.length === 0) return out;
  const everyone = extra.some((u) => u.type === 'group' && u.principal.toLowerCase() === 'users');
  const names = extra.map((u) => `${u.type} ${u.principal}`).join(', ');
  out.push({
    code: 'pat-creation-open', severity: everyone ? 'high' : 'medium', scope: scope.scope, estate: scope.estate,
    message: `In ${scope.scope}, ${names} may create personal access tokens (CAN_USE), beyond the allow-list (${policy.patCreationAllowList.join(', ') || 'empty'}).`,
    remedy: `Remove CAN_USE for ${extra.map((u) => u.principal).join(', ')} in ${scope.scope} token permissions, or add them to policy.patCreationAllowList.`,
  });
  return out;
}

/** Databricks workspace-conf: PATs switched off (their findings are not shown, so say why), or no lifetime limit. */
function workspaceConfFindings(scope: ScopeInput, policy: PolicyConfig, credentials: readonly Credential[]): Finding[] {
  if (scope.estate !== 'databricks') return [];
  const base = { scope: scope.scope, estate: scope.estate };
  if (scope.facts.tokensEnabled === false) {
    const tokens = credentials.filter((c) => c.kind === 'databricks-pat' && c.where.scope === scope.scope);
    const stored = tokens.filter((c) => c.heldIn.length > 0 || c.consumers.length > 0);
    const held = stored.length ? ` Pipelines use ${stored.length === 1 ? 'one of them' : `${stored.length} of them`} through Key Vault (${stored.map((c) => c.name).join(', ')}) and fail until tokens are enabled again or the pipelines move to another credential.` : '';
    return [{
      ...base, code: 'tokens-disabled', severity: stored.length ? 'high' : 'info',
      message: `Personal access tokens are disabled in ${scope.scope} (workspace-conf enableTokensConfig is "false"): its ${plural(tokens.length, 'token')} cannot authenticate, so Keywarden shows them as disabled and raises no expiry or policy alerts for them.${held}`,
      remedy: stored.length
        ? `Move those pipelines to a service principal with OAuth, or enable tokens again (workspace-conf enableTokensConfig "true") in ${scope.scope}.`
        : `Nothing to do if this is intended; revoke the leftover tokens in ${scope.scope} so they cannot come back if tokens are enabled again.`,
    }];
  }
  if (scope.facts.maxTokenLifetimeDays !== null) return [];
  const days = policyFor(policy, 'databricks-pat', scope.scope).maxLifetimeDays;
  return [{
    ...base, code: 'no-max-token-lifetime', severity: 'medium',
    message: `Databricks workspace ${scope.scope} sets no maximum token lifetime (workspace-conf maxTokenLifetimeDays is not set), so anyone allowed to create tokens can create one that lives for years or never expires.`,
    remedy: `Set maxTokenLifetimeDays for ${scope.scope} (PATCH /api/2.0/workspace-conf {"maxTokenLifetimeDays": "${days}"}), e.g. to the policy maximum of ${days} days.`,
  }];
}

/** Every finding for every credential and scope. Keywarden's own credentials are judged like any other. */
export function evaluatePolicy(input: PolicyInput): Finding[] {
  const byId = input.held ?? new Map(input.credentials.map((c) => [c.id, c]));
  const facts = new Map((input.scopes ?? []).map((s) => [`${s.estate}:${s.scope}`, s.facts]));
  const findings: Finding[] = [];
  for (const c of input.credentials) {
    if (c.enabled === false) continue;
    const rules = policyFor(input.policy, c.kind, c.where.scope);
    const expired = isExpired(c, input.now);
    // A secret that mirrors the credential it holds warns through that credential, not twice.
    if (!mirrorsHeldCredential(c, byId)) findings.push(...expiryFindings(c, rules, input.now));
    findings.push(...lifetimeFinding(c, rules, facts.get(`${c.where.estate}:${c.where.scope}`)));
    if (!expired) findings.push(...rotationFinding(c, rules, input.now), ...unusedFinding(c, rules, input.now));
    findings.push(...ownerFindings(c), ...kvMismatchFinding(c, byId));
  }
  if (input.credentialsOnly) return findings;
  for (const s of input.scopes ?? []) findings.push(...scopeFindings(s, input.policy, input.credentials));
  return findings;
}

/** The findings about one scope itself (token permissions, workspace-conf); `credentials` are that scope's. */
export function evaluateScopePolicy(scope: ScopeInput, policy: PolicyConfig, credentials: readonly Credential[]): Finding[] {
  return scopeFindings(scope, policy, credentials);
}

/** Findings that are about expiry (the /expiring view) versus the rest (the /findings view). */
export function isExpiryFinding(f: Pick<Finding, 'code'>): boolean {
  return f.code === 'expired' || f.code === 'expiring';
}

/** Findings per credential id, for quick lookup. */
export function findingsByCredential(findings: readonly Finding[]): Map<string, Finding[]> {
  const map = new Map<string, Finding[]>();
  for (const f of findings) {
    if (!f.credentialId) continue;
    const list = map.get(f.credentialId) ?? [];
    list.push(f);
    map.set(f.credentialId, list);
  }
  return map;
}
