import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CardError, cardSize, clearCardCache, defaultCardsDir, findPackageRoot, renderCard } from '../../src/cards/render.js';

const REPO = resolve(import.meta.dirname, '../..');
const templatesDir = resolve(import.meta.dirname, '../fixtures/cards');

const data = {
  scannedAt: '2026-11-22T06:00:00Z',
  items: [{ name: 'ws-prod/adf-etl', daysLeft: 7 }, { name: 'kv-prod/db-password', daysLeft: 14 }],
  more: 3,
  alertId: 'alert-1',
  nonce: 'n-123',
};

afterEach(() => clearCardCache());

describe('renderCard', () => {
  it('expands bindings, repeats $data rows, evaluates $when and functions', () => {
    const card = renderCard('expiring-test', data, { templatesDir });
    expect(card.type).toBe('AdaptiveCard');
    expect(card.version).toBe('1.5');
    const body = card.body as Record<string, unknown>[];
    expect(body[0]!.text).toBe('Expiring credentials (2)');
    expect(body[1]!.text).toBe('Scanned 2026-11-22');
    expect(body[2]!.facts).toEqual([
      { title: 'ws-prod/adf-etl', value: '7 days' },
      { title: 'kv-prod/db-password', value: '14 days' },
    ]);
    expect(body[3]!.text).toBe('and 3 more — try /expiring 30d');
    expect(card.actions).toEqual([{ type: 'Action.Execute', title: 'Details', verb: 'alertDetails', data: { alertId: 'alert-1', nonce: 'n-123' } }]);
    expect(JSON.stringify(card)).not.toContain('${');
  });

  it('drops a $when block whose condition is false', () => {
    const card = renderCard('expiring-test', { ...data, more: 0 }, { templatesDir });
    expect((card.body as unknown[]).length).toBe(3);
  });

  it('names every binding the data does not fill', () => {
    const { nonce: _nonce, alertId: _alertId, ...partial } = data;
    expect(() => renderCard('expiring-test', partial, { templatesDir })).toThrow(CardError);
    try {
      renderCard('expiring-test', partial, { templatesDir });
    } catch (err) {
      expect((err as CardError).code).toBe('CARD_UNBOUND');
      expect((err as Error).message).toContain('${alertId}');
      expect((err as Error).message).toContain('${nonce}');
    }
  });

  it('keeps data that itself contains "${" as plain text (no template injection)', () => {
    const card = renderCard('expiring-test', { ...data, items: [{ name: 'evil-${nonce}', daysLeft: 1 }] }, { templatesDir });
    expect((card.body as { facts?: unknown }[])[2]!.facts).toEqual([{ title: 'evil-${nonce}', value: '1 days' }]);
  });

  it('says which template is missing, and refuses path-like names', () => {
    expect(() => renderCard('no-such-card', {}, { templatesDir })).toThrow(/card template "no-such-card" not found at .*no-such-card\.json/);
    expect(() => renderCard('../fixtures/cards/expiring-test', data, { templatesDir })).toThrow(/not valid/);
  });

  it('caches the parsed template until the cache is cleared', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-cards-'));
    try {
      cpSync(join(templatesDir, 'expiring-test.json'), join(dir, 'expiring-test.json'));
      const first = renderCard('expiring-test', data, { templatesDir: dir });
      writeFileSync(join(dir, 'expiring-test.json'), JSON.stringify({ type: 'AdaptiveCard', version: '1.5', body: [] }));
      expect(renderCard('expiring-test', data, { templatesDir: dir })).toEqual(first);
      clearCardCache();
      expect(renderCard('expiring-test', data, { templatesDir: dir }).body).toEqual([]);
      writeFileSync(join(dir, 'broken.json'), '{ "type": ');
      expect(() => renderCard('broken', {}, { templatesDir: dir })).toThrow(/not valid JSON/);
      writeFileSync(join(dir, 'not-a-card.json'), '{ "type": "Message" }');
      expect(() => renderCard('not-a-card', {}, { templatesDir: dir })).toThrow(/"type": "AdaptiveCard"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cards folder and size', () => {
  it('finds cards/ at the package root from src/ and from dist/', () => {
    expect(defaultCardsDir()).toBe(join(REPO, 'cards'));
    expect(findPackageRoot(join(REPO, 'src', 'cards'))).toBe(REPO);
    expect(findPackageRoot(join(REPO, 'dist', 'src', 'cards'))).toBe(REPO);
  });

  it('measures the serialized size in UTF-8 bytes', () => {
    expect(cardSize({ type: 'AdaptiveCard', body: [] })).toBe(Buffer.byteLength('{"type":"AdaptiveCard","body":[]}'));
    expect(cardSize({ t: '—' })).toBe(Buffer.byteLength('{"t":"—"}'));
    expect(cardSize(renderCard('expiring-test', data, { templatesDir }))).toBeLessThan(25 * 1024);
  });
});
