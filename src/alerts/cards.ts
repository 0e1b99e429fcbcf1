import { DAY_MS } from '../clock.js';
import { cardSize, CARD_SIZE_BUDGET_BYTES, renderCard } from '../cards/render.js';
import type { AdaptiveCard, MessageContent } from '../domain/chat.js';
import type { Consumer, Credential, CredentialKind, Finding, Severity } from '../domain/credential.js';
import { SEVERITY_ORDER } from '../domain/credential.js';
import { formatExpiry, formatUtc, formatUtcDate, type ExpiryThreshold } from '../domain/expiry.js';
import { rotationText } from '../domain/rotation-state.js';
import { consumersLabel } from '../domain/blast-radius.js';
import { selfCredentialText } from '../domain/self-credential.js';
import type { AlertRecord, DigestData } from './types.js';

/** Builds the alert, details and digest cards from stored state (cards/*.json hold the layout). */

export const KIND_LABELS: Record<CredentialKind, string> = {
  'databricks-pat': 'Databricks PAT',
  'keyvault-secret': 'Key Vault secret',
  'entra-password': 'Entra client secret',
  'entra-certificate': 'Entra certificate',
};

/** The kind as people say it: a client secret set on a service principal is an SP secret, not the app's. */
export function kindLabel(c: Pick<Credential, 'kind' | 'attributes'>): string {
  if (c.kind === 'entra-password' && c.attributes.objectType === 'servicePrincipal') return 'Entra SP client secret';
  if (c.kind === 'entra-certificate' && c.attributes.objectType === 'servicePrincipal') return 'Entra SP certificate';
  return KIND_LABELS[c.kind];
}

export interface AlertCardOptions {
  /** A banner above the card, e.g. "This card was out of date; here is the current state." */
  notice?: string;
  /** Fewer findings/consumers rows, after Teams answered "message too large". */
  compact?: boolean;
  /** Upper bound for the snooze date picker (config.alerts.snoozeMaxDays, default 30). */
  snoozeMaxDays?: number;
  /** Users to @mention (owner / approvers) when the alert is urgent. */
  mentions?: Array<{ aadObjectId: string; name: string }>;
  /** Teams user MRIs (29:…) whose clients ask for a fresh card when they open it (approvers and responders, ≤ 60). */
  refreshUserIds?: string[];
  /** The auto-rotation rule in force for it (approvals/auto-rotation.ts `autoRotationText`): a fact instead of the offer. */
  autoRotation?: string;
}

/** Rotate is offered only where Keywarden can rotate: an SP-owned PAT or an Entra password, held in Key Vault. */
export function isRotatable(credential: Credential): boolean {
  if (credential.heldIn.length === 0) return false;
  if (credential.kind === 'databricks-pat') return credential.owner?.kind === 'service-principal';
  return credential.kind === 'entra-password';
}

/** Revoke is offered only where Keywarden can revoke: a Databricks PAT, or an Entra password whose app it knows. */
export function isRevocable(credential: Credential): boolean {
  if (credential.kind === 'databricks-pat') return true;
  return credential.kind === 'entra-password' && Boolean(credential.attributes.objectId);
}

export function thresholdLabel(threshold: ExpiryThreshold | null): string {
  if (threshold === null) return 'no expiry threshold crossed';
  if (threshold === 'expired') return 'expired';
  return `${threshold}-day warning`;
}

function severityColor(severity: Severity): string {
  return SEVERITY_ORDER.indexOf(severity) >= SEVERITY_ORDER.indexOf('high') ? 'Attention' : severity === 'medium' ? 'Warning' : 'Default';
}

function oneOwner(o: NonNullable<Credential['owner']>): string {
  const kind = o.kind === 'service-principal' ? 'service principal' : o.kind === 'user' ? 'user' : o.kind;
  return `${o.name} (${kind}${o.active === false ? ', deactivated' : ''})`;
}

/** Who Teams can @mention and message for a credential: active owners with an Entra object id (providers set it for people), at most 3. */
export function ownersToReach(credential: Credential): Array<{ aadObjectId: string; name: string }> {
  const candidates = credential.owners ?? (credential.owner ? [credential.owner] : []);
  const seen = new Set<string>();
  const out: Array<{ aadObjectId: string; name: string }> = [];
  for (const o of candidates) {
    if (!o.entraObjectId || o.active === false || seen.has(o.entraObjectId)) continue;
    seen.add(o.entraObjectId);
    out.push({ aadObjectId: o.entraObjectId, name: o.name });
  }
  return out.slice(0, 3);
}

/** Entra credentials name the owners Graph lists (people first); other kinds their one owner. */
export function ownerText(credential: Credential): string {
  const owners = credential.owners;
  if (owners && owners.length === 0) return 'no owner in Entra — add one to the app registration';
  if (owners && owners.length > 0) {
    const people = [...owners].sort((a, b) => Number(b.kind === 'user') - Number(a.kind === 'user'));
    const shown = people.slice(0, 3).map(oneOwner).join(', ');
    return owners.length > 3 ? `${shown} and ${owners.length - 3} more` : shown;
  }
  return credential.owner ? oneOwner(credential.owner) : 'unknown';
}

export function whereText(credential: Credential): string {
  const held = credential.heldIn.map((s) => `${s.vault}/${s.name}`);
  return held.length > 0 ? `${credential.where.label} · held in ${held.join(', ')}` : credential.where.label;
}

export function consumerText(c: Consumer): string {
  const pipelines = c.pipelines?.length ? ` → pipelines ${c.pipelines.join(', ')}` : '';
  const notes = [c.pinnedVersion ? 'pinned secret version: a rotation will not reach it' : '', c.dynamic ? 'possible (dynamic secret name)' : '']
    .filter(Boolean).join('; ');
  return `Data Factory ${c.factory} / ${c.name}${pipelines}${notes ? ` (${notes})` : ''}`;
}

function findingText(f: Finding): string {
  return `${f.severity.toUpperCase()} · ${f.message}`;
}

function headline(alert: AlertRecord, now: number): { text: string; color: string } {
  const c = alert.credential;
  const label = `${kindLabel(c)} ${c.name}`;
  if (alert.state === 'resolved' && alert.resolution?.kind === 'rolled-back') return { text: `↩️ Rotation rolled back: ${label}`, color: 'Warning' };
  if (alert.state === 'resolved') return { text: `✅ Resolved: ${label}`, color: 'Good' };
  if (alert.threshold === 'expired') return { text: `⛔ ${label} has expired`, color: 'Attention' };
  if (alert.threshold !== null) {
    const days = c.expiresAt === null ? 0 : Math.max(1, Math.ceil((c.expiresAt - now) / DAY_MS));
    const urgent = alert.threshold <= 7;
    return { text: `${urgent ? '🔴' : '⚠️'} ${label} expires in ${days} day${days === 1 ? '' : 's'}`, color: urgent ? 'Attention' : 'Warning' };
  }
  return { text: `⚠️ ${label} needs attention`, color: 'Warning' };
}

/** The status line: resolution, progress, snooze or acknowledgement, newest first. */
export function statusLine(alert: AlertRecord, now: number): string {
  if (alert.state === 'resolved' && alert.resolution) {
    const by = alert.resolution.by ? ` by ${alert.resolution.by.name}` : '';
    return `Resolved${by} at ${formatUtc(alert.resolution.at)}: ${alert.resolution.text}`;
  }
  const parts: string[] = [];
  if (alert.progress) parts.push(alert.progress.text);
  if (alert.rolledBack) parts.push(`Rotation rolled back${alert.rolledBack.by ? ` by ${alert.rolledBack.by.name}` : ''} at ${formatUtc(alert.rolledBack.at)}: ${alert.rolledBack.text}`);
  if (alert.state === 'snoozed' && alert.snooze && alert.snooze.until > now) {
    parts.push(`Snoozed by ${alert.snooze.by.name} until ${formatUtcDate(alert.snooze.until)}: ${alert.snooze.reason}`);
  }
  if (alert.acknowledged) parts.push(`Acknowledged by ${alert.acknowledged.by.name} at ${formatUtc(alert.acknowledged.at)}${alert.acknowledged.reason ? `: ${alert.acknowledged.reason}` : ''}`);
  return parts.join(' · ');
}

function limited<T>(items: T[], max: number, describe: (n: number) => { text: string; color?: string }, map: (t: T) => { text: string; color?: string }) {
  const shown = items.slice(0, max).map((t) => ({ color: 'Default', ...map(t) }));
  if (items.length > max) shown.push({ color: 'Default', ...describe(items.length - max) });
  return shown;
}

/** The Expires fact: the expiry, or for an old credential in its rotation grace window, when Keywarden revokes it. */
export function expiresText(alert: AlertRecord, now: number): string {
  const rotation = alert.state === 'resolved' ? alert.resolution?.rotation : undefined;
  return rotation ? rotationText({ state: 'grace', ...rotation }) : formatExpiry(alert.credential.expiresAt, now);
}

/** The alert card (cards/alert.json). Workflows call this after an action to show the new state. */
export function renderAlertCard(alert: AlertRecord, now: number, options: AlertCardOptions = {}): AdaptiveCard {
  const c = alert.credential;
  const head = headline(alert, now);
  const resolved = alert.state === 'resolved';
  const busy = Boolean(alert.progress?.jobId);
  const rows = options.compact ? 3 : 8;
  const findings = alert.findings.filter((f) => f.code !== 'expiring' && f.code !== 'expired')
    .sort((a, b) => SEVERITY_ORDER.indexOf(b.severity) - SEVERITY_ORDER.indexOf(a.severity));
  const mentions = resolved ? [] : options.mentions ?? [];
  const status = [selfCredentialText(c), statusLine(alert, now)].filter(Boolean).join(' · ');
  const maxDays = options.snoozeMaxDays ?? 30;
  const data = {
    hasNotice: Boolean(options.notice), notice: options.notice ?? '',
    headline: head.text, headlineColor: head.color,
    hasMention: mentions.length > 0,
    mentionText: mentions.length > 0 ? `${mentions.map((m) => `<at>${m.name}</at>`).join(' ')} please act before it expires.` : '',
    kindLabel: kindLabel(c), name: c.name, where: whereText(c), owner: ownerText(c),
    expires: expiresText(alert, now),
    thresholdText: resolved ? 'none (resolved)' : thresholdLabel(alert.threshold),
    hasFindings: findings.length > 0,
    findings: limited(findings, rows, (n) => ({ text: `…and ${n} more (Details)` }), (f) => ({ text: findingText(f), color: severityColor(f.severity) })),
    hasConsumers: c.consumers.length > 0,
    consumers: limited(c.consumers, rows, (n) => ({ text: `…and ${n} more (Details)` }), (x) => ({ text: consumerText(x) })),
    hasStatus: status.length > 0, statusLine: status,
    showActions: !resolved,
    // While a job acts on the credential its card offers no second action (a late click would only be refused).
    canRotate: !resolved && !busy && isRotatable(c),
    canRevoke: !resolved && !busy && isRevocable(c),
    hasAutoRotation: !resolved && Boolean(options.autoRotation), autoRotation: options.autoRotation ?? '',
    canAutoRotate: !resolved && !busy && isRotatable(c) && !options.autoRotation,
    // A person's PAT running pipelines: offer to move it to the workspace's service principal (workflows/move-to-sp).
    canMoveToSp: !resolved && !busy && alert.findings.some((f) => f.code === 'human-owned-pipeline'),
    canAcknowledge: !resolved && !alert.acknowledged,
    alertId: alert.id, nonce: alert.nonce,
    snoozeMaxDays: String(maxDays),
    snoozeMin: formatUtcDate(now + DAY_MS),
    snoozeMax: formatUtcDate(now + maxDays * DAY_MS),
    snoozeDefault: formatUtcDate(now + Math.min(7, maxDays) * DAY_MS),
    hasRefresh: !resolved,
    refreshUserIds: (options.refreshUserIds ?? []).slice(0, 60),
  };
  const card = renderCard('alert', data);
  const refresh = card.refresh as { userIds?: string[] } | null | undefined;
  if (!refresh) delete card.refresh;
  // No approver seen yet: without userIds Teams refreshes for everyone in a channel of ≤ 60 members, and those
  // refresh invokes are how Keywarden learns the approvers' Teams ids ([] would switch auto-refresh off).
  else if (refresh.userIds?.length === 0) delete refresh.userIds;
  if (mentions.length > 0) {
    // Mentions inside a card need entities on the card itself (msteams.entities), not only on the activity.
    const msteams = (card.msteams ?? {}) as Record<string, unknown>;
    card.msteams = {
      ...msteams,
      entities: mentions.map((m) => ({ type: 'mention', text: `<at>${m.name}</at>`, mentioned: { id: m.aadObjectId, name: m.name } })),
    };
  }
  return card;
}

/** Card plus activity-level mentions (so Teams notifies the people named), shrunk if it would be too large. */
export function alertMessage(alert: AlertRecord, now: number, options: AlertCardOptions = {}): MessageContent {
  let card = renderAlertCard(alert, now, options);
  if (!options.compact && cardSize(card) > CARD_SIZE_BUDGET_BYTES) card = renderAlertCard(alert, now, { ...options, compact: true });
  const mentions = alert.state === 'resolved' ? [] : options.mentions ?? [];
  if (mentions.length === 0) return { card };
  const c = alert.credential;
  const text = `${mentions.map((m) => `<at>${m.name}</at>`).join(' ')} ${kindLabel(c)} ${c.name} ${alert.threshold === 'expired' ? 'has expired' : `expires ${formatExpiry(c.expiresAt, now)}`}.`;
  return { card, text, mentions };
}

function historyLine(h: AlertRecord['history'][number]): string {
  return `${formatUtc(h.at)} · ${h.text}${h.actor ? ` (${h.actor.name})` : ''}`;
}

/** Everything known about the credential: facts, findings with their fixes, consumers, the alert's history. */
export function renderDetailsCard(alert: AlertRecord, now: number): AdaptiveCard {
  const c = alert.credential;
  const facts: Array<{ title: string; value: string }> = [
    { title: 'Kind', value: kindLabel(c) },
    { title: 'Name', value: c.name },
    { title: 'Id', value: c.nativeId },
    { title: 'Where', value: c.where.label },
    { title: 'Owner', value: ownerText(c) },
    { title: 'Created', value: c.createdAt ? formatUtc(c.createdAt) : 'unknown' },
    { title: 'Expires', value: expiresText(alert, now) },
    { title: 'Last used', value: c.lastUsedAt === undefined ? 'not known for this kind' : c.lastUsedAt === null ? 'never' : formatUtc(c.lastUsedAt) },
    { title: 'Held in', value: c.heldIn.length ? c.heldIn.map((s) => `${s.vault}/${s.name}`).join(', ') : 'not linked to a Key Vault secret' },
    { title: 'Alert', value: `${alert.state} · ${thresholdLabel(alert.threshold)}` },
  ];
  const status = statusLine(alert, now);
  if (status) facts.push({ title: 'Status', value: status });
  const findings = alert.findings.map((f) => ({ text: findingText(f), remedy: f.remedy, color: severityColor(f.severity) }));
  return renderCard('alert-details', {
    title: `Details: ${kindLabel(c)} ${c.name}`,
    facts,
    hasFindings: findings.length > 0,
    findings,
    hasConsumers: c.consumers.length > 0,
    consumers: c.consumers.map((x) => ({ text: consumerText(x) })),
    history: alert.history.slice(-15).reverse().map((h) => ({ text: historyLine(h) })),
  });
}

const URGENCY_COLORS: Record<string, string> = {
  expired: 'categoricalRed', '≤ 1 day': 'categoricalMarigold', '≤ 7 days': 'divergingYellow',
  '≤ 14 days': 'categoricalBlue', '≤ 30 days': 'categoricalTeal', findings: 'categoricalPurple',
};

/** One digest per scan per channel: counts by urgency and kind, two charts, the most urgent rows. */
export function renderDigestCard(digest: DigestData, options: { maxRows?: number } = {}): AdaptiveCard {
  const maxRows = Math.max(0, options.maxRows ?? 10);
  const items = digest.items.slice(0, maxRows);
  const more = digest.total - items.length;
  return renderCard('digest', {
    title: `🔑 ${digest.total} credential${digest.total === 1 ? '' : 's'} need${digest.total === 1 ? 's' : ''} attention (${digest.newCount} new)`,
    subtitle: `Keywarden scan ${formatUtc(digest.at)}`,
    byUrgency: digest.byUrgency.map((u) => ({ urgency: u.urgency, count: String(u.count) })),
    byKind: digest.byKind.map((k) => ({ label: KIND_LABELS[k.kind], count: String(k.count) })),
    donut: digest.byUrgency.map((u) => ({ legend: u.urgency, value: u.count, color: URGENCY_COLORS[u.urgency] ?? 'categoricalBlue' })),
    bars: digest.byKind.map((k) => ({ x: KIND_LABELS[k.kind], y: k.count })),
    items: [...items, ...(digest.rotated ?? []).slice(0, maxRows)].map((i) => ({ line: `**${i.name}** · ${KIND_LABELS[i.kind]} · ${i.where} · owner ${i.owner} · ${i.expires}${i.consumers === undefined ? '' : ` · ${consumersLabel(i.consumers)}`}` })),
    hasMore: more > 0,
    more: more > 0 ? `…and ${more} more. Ask @Keywarden /expiring 30d for the full list.` : '',
  });
}
