/**
 * Checks an inbound body before the adapter sees it: the adapter answers a missing conversation with a 500
 * (and a missing channelId/from/recipient with a failed turn), so malformed input is refused here with a 400.
 */

export type GuardResult = { ok: true } | { ok: false; problems: string[] };

function str(v: unknown): v is string {
  return typeof v === 'string' && v.trim().length > 0;
}

function field(obj: unknown, key: string): unknown {
  return obj && typeof obj === 'object' ? (obj as Record<string, unknown>)[key] : undefined;
}

export function checkInboundActivity(body: unknown): GuardResult {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, problems: ['the body must be a JSON object (a Bot Framework activity) sent with content-type application/json'] };
  }
  const problems: string[] = [];
  if (!str(field(body, 'type'))) problems.push('type is missing (e.g. "message")');
  if (!str(field(body, 'channelId'))) problems.push('channelId is missing (e.g. "msteams")');
  const serviceUrl = field(body, 'serviceUrl');
  if (!str(serviceUrl)) problems.push('serviceUrl is missing (the Bot Connector URL to answer to)');
  else if (!/^https?:\/\/[^\s/]+/i.test(serviceUrl)) problems.push('serviceUrl must be an http(s) URL');
  if (!str(field(field(body, 'conversation'), 'id'))) problems.push('conversation.id is missing');
  if (!str(field(field(body, 'from'), 'id'))) problems.push('from.id is missing');
  if (!str(field(field(body, 'recipient'), 'id'))) problems.push('recipient.id is missing');
  // teams-ai calls string methods on text and attachments before any route runs: a wrong type would fail the turn.
  const text = field(body, 'text');
  if (text !== undefined && text !== null && typeof text !== 'string') problems.push(`text must be a string (got ${Array.isArray(text) ? 'an array' : typeof text})`);
  const attachments = field(body, 'attachments');
  if (attachments !== undefined && attachments !== null && !Array.isArray(attachments)) problems.push('attachments must be an array');
  const entities = field(body, 'entities');
  if (entities !== undefined && entities !== null && !Array.isArray(entities)) problems.push('entities must be an array');
  // botbuilder reads entities[i].type.toLowerCase() to find mentions: an entity without a string type fails the turn.
  else if (Array.isArray(entities) && entities.some((e) => !str(field(e, 'type')))) problems.push('every entity must be an object with a "type" (e.g. "mention")');
  return problems.length ? { ok: false, problems } : { ok: true };
}

/** What the SDK's validateAndFixActivity does after parsing: timestamps arrive as strings, the SDK wants Dates. */
export function fixTimestamps<T extends Record<string, unknown>>(activity: T): T {
  for (const key of ['timestamp', 'localTimestamp', 'expiration'] as const) {
    const value = activity[key];
    if (typeof value === 'string') {
      (activity as Record<string, unknown>)[`raw${key[0]!.toUpperCase()}${key.slice(1)}`] = value;
      (activity as Record<string, unknown>)[key] = new Date(value);
    }
  }
  return activity;
}
