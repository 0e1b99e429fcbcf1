import { describe, expect, it } from 'vitest';
import { DAY_MS, MINUTE_MS } from '../../src/clock.js';
import { configSchema } from '../../src/config/schema.js';
import type { ChatContext } from '../../src/domain/chat.js';
import { checkConversation, checkJustification, checkNonce, checkSelfApproval, checkTenant, cleanText, requiredApprovals } from '../../src/approvals/rules.js';

const NOW = Date.UTC(2026, 4, 4, 12);
const approvals = configSchema.parse({ approvals: { highRisk: [{ action: 'revoke', scopes: ['ws-prod'], approvals: 2 }, { action: 'rotate', scopes: ['prod'], approvals: 3 }] } }).approvals;

function ctx(over: Partial<ChatContext['actor']> = {}, conversationId = '19:support@thread.tacv2;messageid=123'): ChatContext {
  return {
    actor: { userId: '29:x', name: 'Alex', aadObjectId: 'a1', tenantId: 't1', ...over },
    conversation: { conversationId, serviceUrl: 'https://smba/', tenantId: 't1', kind: 'channel' },
  };
}

describe('approval rules', () => {
  it('needs N approvers for high-risk actions by scope or environment, one otherwise', () => {
    expect(requiredApprovals({ action: 'revoke', scope: 'ws-prod', now: NOW }, approvals).required).toBe(2);
    expect(requiredApprovals({ action: 'revoke', scope: 'ws-dev', now: NOW }, approvals).required).toBe(1);
    expect(requiredApprovals({ action: 'rotate', scope: 'ws-prod', environment: 'prod', now: NOW }, approvals).required).toBe(3);
    expect(requiredApprovals({ action: 'rotate', scope: 'ws-dev', environment: 'dev', now: NOW }, approvals).required).toBe(1);
  });

  it('a revoke of something used in the last 7 days needs a second approver unless an override reason is given', () => {
    const recent = requiredApprovals({ action: 'revoke', scope: 'ws-dev', lastUsedAt: NOW - 2 * DAY_MS, now: NOW }, approvals);
    expect(recent.required).toBe(2);
    expect(recent.reasons.join()).toMatch(/used within the last 7 days/);
    expect(requiredApprovals({ action: 'revoke', scope: 'ws-dev', lastUsedAt: NOW - 2 * DAY_MS, overrideReason: 'leaked', now: NOW }, approvals).required).toBe(1);
    expect(requiredApprovals({ action: 'revoke', scope: 'ws-dev', lastUsedAt: NOW - 30 * DAY_MS, now: NOW }, approvals).required).toBe(1);
    expect(requiredApprovals({ action: 'revoke', scope: 'ws-dev', lastUsedAt: null, now: NOW }, approvals).required).toBe(1);
  });

  it('checks the nonce and its freshness', () => {
    expect(checkNonce('n1', 'n1', NOW - 5 * MINUTE_MS, NOW, 30)).toBeUndefined();
    expect(checkNonce('n0', 'n1', NOW, NOW, 30)).toMatchObject({ code: 'stale-card', refresh: true });
    expect(checkNonce(undefined, 'n1', NOW, NOW, 30)).toMatchObject({ code: 'stale-card' });
    expect(checkNonce('n1', 'n1', NOW - 31 * MINUTE_MS, NOW, 30)).toMatchObject({ code: 'stale-card', refresh: true });
  });

  it('checks tenant, identity and conversation', () => {
    expect(checkTenant(ctx(), 't1')).toBeUndefined();
    expect(checkTenant(ctx({ tenantId: 't2' }), 't1')).toMatchObject({ code: 'wrong-tenant' });
    expect(checkTenant(ctx({ aadObjectId: undefined }), 't1')).toMatchObject({ code: 'anonymous' });
    const channels = configSchema.parse({ teams: { channels: [{ name: 'support', conversationId: '19:support@thread.tacv2', serviceUrl: 'https://smba/', tenantId: 't1' }] } }).teams.channels;
    expect(checkConversation(ctx(), '19:support@thread.tacv2', channels)).toBeUndefined();
    expect(checkConversation(ctx({}, '19:other@thread.tacv2'), '19:support@thread.tacv2', channels)).toMatchObject({ code: 'wrong-conversation' });
    expect(checkConversation(ctx({}, '19:other@thread.tacv2'), '19:other@thread.tacv2', channels)).toMatchObject({ code: 'wrong-conversation' });
  });

  it('refuses self-approval and requires a justification for revoke and JIT', () => {
    expect(checkSelfApproval('a1', 'a1')).toMatchObject({ code: 'self-approval' });
    expect(checkSelfApproval('a2', 'a1')).toBeUndefined();
    expect(checkJustification('revoke', ' ')).toMatchObject({ code: 'justification-required' });
    expect(checkJustification('jit', 'INC-1234 backfill')).toBeUndefined();
    expect(checkJustification('rotate', undefined)).toBeUndefined();
    expect(cleanText('  a\u0000b  ')).toBe('a b');
    expect(cleanText('x'.repeat(900))).toHaveLength(500);
  });
});
