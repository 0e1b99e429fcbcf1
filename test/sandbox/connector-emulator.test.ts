import { afterEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../src/clock.js';
import { startConnectorEmulator, type ConnectorEmulator } from '../../src/sandbox/connector/emulator.js';

const CHANNEL = '19:support@thread.tacv2';
const enc = encodeURIComponent;

/** The response fields these tests read (loosely typed on purpose: each call returns one of these shapes). */
interface ConnectorBody {
  id: string;
  activityId: string;
  error: { code: string };
  members: Array<{ id: string }>;
  continuationToken: string;
}

describe('Bot Connector emulator (REST protocol)', () => {
  let c: ConnectorEmulator | undefined;
  afterEach(async () => { await c?.close(); c = undefined; });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: ConnectorBody; headers: Headers }> {
    const res = await fetch(`${c!.url}${path}`, {
      method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : undefined) as ConnectorBody, headers: res.headers };
  }

  it('assigns increasing 13-digit ids and keeps threads by ";messageid=" (URL-encoded as the SDK sends it)', async () => {
    c = await startConnectorEmulator();
    const root = await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message', text: 'root' });
    expect(root.status).toBe(201);
    expect(root.json.id).toMatch(/^\d{13}$/);
    const thread = enc(`${CHANNEL};messageid=${root.json.id}`);
    const reply = await call('POST', `/v3/conversations/${thread}/activities/${root.json.id}`, { type: 'message', text: 'in thread' });
    expect(Number(reply.json.id)).toBeGreaterThan(Number(root.json.id));
    const second = await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities/some-uuid`, { type: 'message', text: 'second root' });

    expect(c.postsIn(CHANNEL).map((a) => a.text)).toEqual(['root', 'second root']);
    expect(c.postsIn(CHANNEL)[1]!.replyToId).toBe('some-uuid');
    expect(c.repliesTo(root.json.id).map((a) => ({ text: a.text, op: a.op, conversationId: a.conversationId, threadRootId: a.threadRootId })))
      .toEqual([{ text: 'in thread', op: 'reply', conversationId: CHANNEL, threadRootId: root.json.id }]);
    expect(second.status).toBe(201);
  });

  it('updates and deletes existing activities; unknown ones are 404', async () => {
    c = await startConnectorEmulator();
    const { json } = await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message', text: 'v1' });
    const put = await call('PUT', `/v3/conversations/${enc(CHANNEL)}/activities/${json.id}`, { type: 'message', text: 'v2' });
    expect(put).toMatchObject({ status: 200, json: { id: json.id } });
    expect(c.updatesOf(json.id).map((a) => a.text)).toEqual(['v2']);
    expect((await call('DELETE', `/v3/conversations/${enc(CHANNEL)}/activities/${json.id}`)).status).toBe(200);
    const gone = await call('PUT', `/v3/conversations/${enc(CHANNEL)}/activities/${json.id}`, { type: 'message', text: 'v3' });
    expect(gone).toMatchObject({ status: 404, json: { error: { code: 'ActivityNotFound' } } });
    expect((await call('PUT', `/v3/conversations/${enc(CHANNEL)}/activities/1234567890123`, { type: 'message' })).status).toBe(404);
  });

  it('POST /v3/conversations creates a channel post ({id: "<channel>;messageid=<id>", activityId}) or a personal chat', async () => {
    c = await startConnectorEmulator();
    const post = await call('POST', '/v3/conversations', { isGroup: true, channelData: { channel: { id: CHANNEL } }, activity: { type: 'message', text: 'hello channel' } });
    expect(post.status).toBe(201);
    expect(post.json.id).toBe(`${CHANNEL};messageid=${post.json.activityId}`);
    const personal = await call('POST', '/v3/conversations', { isGroup: false, members: [{ id: 'aad-1' }], tenantId: 't1' });
    const again = await call('POST', '/v3/conversations', { isGroup: false, members: [{ id: 'aad-1' }], tenantId: 't1' });
    expect(personal.json.id).toBe(again.json.id);
    expect((await call('POST', '/v3/conversations', { isGroup: false })).status).toBe(400);
  });

  it('lists members, pages them, finds one, and 404s an unknown member', async () => {
    c = await startConnectorEmulator();
    c.seed({ conversations: [{ id: CHANNEL, tenantId: 't1', members: Array.from({ length: 5 }, (_, i) => ({ id: `29:u${i}`, name: `User ${i}`, aadObjectId: `aad-${i}` })) }] });
    expect((await call('GET', `/v3/conversations/${enc(CHANNEL)}/members`)).json).toHaveLength(5);
    const page1 = await call('GET', `/v3/conversations/${enc(CHANNEL)}/pagedmembers?pageSize=2`);
    expect(page1.json.members.map((m: { id: string }) => m.id)).toEqual(['29:u0', '29:u1']);
    const page3 = await call('GET', `/v3/conversations/${enc(CHANNEL)}/pagedmembers?pageSize=2&continuationToken=${page1.json.continuationToken}`);
    expect(page3.json.members.map((m: { id: string }) => m.id)).toEqual(['29:u2', '29:u3']);
    expect((await call('GET', `/v3/conversations/${enc(CHANNEL)}/members/aad-3`)).json).toMatchObject({ id: '29:u3' });
    expect((await call('GET', `/v3/conversations/${enc(CHANNEL)}/members/nobody`)).json.error.code).toBe('MemberNotFoundInConversation');
  });

  it('strict mode answers 404 ConversationNotFound for unknown conversations', async () => {
    c = await startConnectorEmulator({ strictConversations: true });
    const r = await call('POST', `/v3/conversations/${enc('19:unknown@thread.tacv2')}/activities`, { type: 'message', text: 'x' });
    expect(r).toMatchObject({ status: 404, json: { error: { code: 'ConversationNotFound' } } });
    c.seed({ conversations: [{ id: CHANNEL }] });
    expect((await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' })).status).toBe(201);
  });

  it('injects Teams faults per conversation with Teams error bodies and Retry-After', async () => {
    c = await startConnectorEmulator();
    c.injectFault({ kind: 'throttled', conversationId: CHANNEL, retryAfter: 3 });
    c.injectFault({ kind: 'not-in-roster', conversationId: CHANNEL, op: 'update' });
    const other = await call('POST', `/v3/conversations/${enc('19:other@thread.tacv2')}/activities`, { type: 'message' });
    expect(other.status).toBe(201);
    const throttled = await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' });
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('3');
    const ok = await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' });
    const roster = await call('PUT', `/v3/conversations/${enc(CHANNEL)}/activities/${ok.json.id}`, { type: 'message' });
    expect(roster).toMatchObject({ status: 403, json: { error: { code: 'BotNotInConversationRoster' } } });
    c.injectFault({ kind: 'too-large' });
    expect((await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' })).json.error.code).toBe('MessageSizeTooBig');
  });

  it('answers 202 with no body in the no-id mode, and records the activity anyway', async () => {
    c = await startConnectorEmulator();
    c.setNoIdMode({ times: 1 });
    const r = await fetch(`${c.url}/v3/conversations/${enc(CHANNEL)}/activities`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'message', text: 'quiet' }) });
    expect(r.status).toBe(202);
    expect(await r.text()).toBe('');
    expect(c.activities[0]).toMatchObject({ text: 'quiet', idReturned: false });
    expect((await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' })).status).toBe(201);
  });

  it('reports sends over the Teams per-thread limits, by the injected clock; the enforcing mode answers 429', async () => {
    const clock = new AdjustableClock({ frozenAt: 1_800_000_000_000 });
    c = await startConnectorEmulator({ clock });
    for (let i = 0; i < 8; i++) await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' });
    expect(c.limitViolations()).toEqual(expect.arrayContaining([
      expect.objectContaining({ conversationId: CHANNEL, limit: '7 per 1 s', count: 8 }),
    ]));
    await c.close();

    c = await startConnectorEmulator({ clock, enforceRateLimits: true });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' })).status);
    expect(statuses.slice(0, 7).every((s) => s === 201)).toBe(true);
    expect(statuses[7]).toBe(429);
    clock.advance(2_500);
    expect((await call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message' })).status).toBe(201);
    expect(c.limitViolations()).toEqual([]);
  });

  it('waitFor resolves with an activity that arrives later', async () => {
    c = await startConnectorEmulator();
    const waiting = c.waitFor((a) => a.text === 'late', 2_000);
    setTimeout(() => void call('POST', `/v3/conversations/${enc(CHANNEL)}/activities`, { type: 'message', text: 'late' }), 50);
    expect((await waiting).text).toBe('late');
    await expect(c.waitFor((a) => a.text === 'never', 100)).rejects.toThrow(/no matching activity/);
  });
});
