import { SecretClient } from '@azure/keyvault-secrets';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock, DAY_MS } from '../../src/clock.js';
import type { KeyVaultEmulatorHandle } from '../../src/sandbox/keyvault/emulator.js';
import { startKeyVaultEmulator } from '../../src/sandbox/keyvault/emulator.js';
import { fakeCredential, KEYWARDEN_APP, newToken, OTHER_APP, sandboxTls, simpleValidator, TENANT } from './keyvault-fixtures.js';

// (The SDK deserializes the error body, so `innererror` on the wire is `innerError` in RestError.details.)
// Contract tests: the real @azure/keyvault-secrets SecretClient against the emulator. If the SDK accepts it, the fake is right.

const START = Date.UTC(2026, 10, 22, 9, 0, 0);
const clock = new AdjustableClock({ frozenAt: START });
const keywardenToken = newToken();
const otherToken = newToken();
const validator = simpleValidator({ [keywardenToken]: { appId: KEYWARDEN_APP }, [otherToken]: { appId: OTHER_APP } });
let kv: KeyVaultEmulatorHandle;

const client = (vault = 'kv-a', token = keywardenToken) =>
  new SecretClient(kv.vault(vault).url, fakeCredential(token), { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 0 } });

/** A raw authenticated call, to check wire shapes the SDK hides. */
async function raw(path: string, init: RequestInit = {}, vault = 'kv-a'): Promise<Response> {
  return fetch(`${kv.vault(vault).url}${path}`, {
    ...init, headers: { authorization: `Bearer ${keywardenToken}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
}

beforeAll(async () => {
  kv = await startKeyVaultEmulator({ tls: sandboxTls(), tenantId: TENANT, clock, tokenValidator: validator, vaults: [{ name: 'kv-a' }, { name: 'kv-b' }], pageSize: 3 });
});
afterAll(async () => {
  await kv?.close();
});
beforeEach(() => {
  kv.clearOperations();
  kv.clearFaults();
  for (const v of kv.vaults.values()) v.clearAccessList();
});

describe('Key Vault emulator: the challenge', () => {
  it('answers an unauthenticated request with 401 and the Bearer challenge the SDK parses', async () => {
    const res = await fetch(`${kv.vault('kv-a').url}/secrets?api-version=7.4`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${TENANT}", resource="https://vault.azure.net"`);
    expect(await res.json()).toEqual({ error: { code: 'Unauthorized', message: 'Request is missing a Bearer or PoP token.' } });
  });

  it('lets the SDK run the challenge: the first PUT arrives without body or token, the retry carries both and the value is kept', async () => {
    const credential = fakeCredential(keywardenToken);
    const c = new SecretClient(kv.vault('kv-a').url, credential, { disableChallengeResourceVerification: true });
    const created = await c.setSecret('challenge-first', 'value-after-challenge', { tags: { team: 'data' } });

    const puts = kv.vault('kv-a').server.requests.filter((r) => r.method === 'PUT');
    expect(puts.map((r) => [r.status, r.hasBody, r.authPrefix])).toEqual([
      [401, false, undefined],
      [200, true, keywardenToken.slice(0, 8)],
    ]);
    expect(credential.calls).toEqual([{ scopes: ['https://vault.azure.net/.default'], tenantId: TENANT }]);
    expect(validator.audiences).toContain('https://vault.azure.net');
    expect(kv.vault('kv-a').readStoredValue('challenge-first')).toBe('value-after-challenge');
    expect(created.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(created.properties.id).toBe(`${kv.vault('kv-a').url}/secrets/challenge-first/${created.properties.version}`);
    expect(created.properties.vaultUrl).toBe(kv.vault('kv-a').url);

    // Later requests of the same client reuse the token: no second challenge.
    await c.getSecret('challenge-first');
    expect(kv.vault('kv-a').server.requests.filter((r) => r.status === 401)).toHaveLength(1);
    expect(credential.calls).toHaveLength(1);
  });

  it('refuses a token the validator rejects, and the SDK surfaces the 401', async () => {
    const c = new SecretClient(kv.vault('kv-a').url, fakeCredential('not-a-known-token'), { disableChallengeResourceVerification: true });
    await expect(c.setSecret('nope', 'x')).rejects.toMatchObject({ name: 'RestError', statusCode: 401, code: 'Unauthorized' });
    expect(kv.vault('kv-a').secretNames()).not.toContain('nope');
  });

  it('without disableChallengeResourceVerification the SDK rejects a challenge from a host outside vault.azure.net', async () => {
    const c = new SecretClient(kv.vault('kv-a').url, fakeCredential(keywardenToken));
    await expect(c.getSecret('anything')).rejects.toThrow(/does not match the requested domain/);
  });
});

describe('Key Vault emulator: secrets', () => {
  it('gets the latest version through the trailing-slash path and a given version by id, recording both as value reads', async () => {
    const c = client();
    const v1 = await c.setSecret('versioned', 'one');
    clock.advance(1000);
    const v2 = await c.setSecret('versioned', 'two');
    kv.clearOperations();

    expect((await c.getSecret('versioned')).value).toBe('two');
    expect((await c.getSecret('versioned', { version: v1.properties.version! })).value).toBe('one');
    const reads = kv.valueReads().map((o) => [o.path, o.version]);
    expect(reads).toEqual([['/secrets/versioned/', undefined], [`/secrets/versioned/${v1.properties.version}`, v1.properties.version]]);

    const versions: string[] = [];
    for await (const p of c.listPropertiesOfSecretVersions('versioned')) versions.push(p.version!);
    expect(versions).toEqual([v1.properties.version, v2.properties.version]);
    expect(kv.valueReads()).toHaveLength(2);
  });

  it('writes attributes in unix seconds with the recovery level, and accepts any api-version spelling', async () => {
    const exp = new Date(START + 30 * DAY_MS);
    await client().setSecret('shape', 'v', { expiresOn: exp, contentType: 'text/plain', tags: { owner: 'data-platform' } });
    for (const query of ['api-version=7.4', 'api%2Dversion=2025-07-01', 'api-version=2026-04-01']) {
      const res = await raw(`/secrets/shape/?${query}`);
      expect(res.status).toBe(200);
      const body = await res.json() as Record<string, unknown>;
      expect(body.attributes).toEqual({
        enabled: true, exp: Math.floor(exp.getTime() / 1000), created: Math.floor(clock.now() / 1000), updated: Math.floor(clock.now() / 1000),
        recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90,
      });
      expect(body.contentType).toBe('text/plain');
      expect(body.tags).toEqual({ owner: 'data-platform' });
    }
    const sdk = await client().getSecret('shape');
    expect(sdk.properties.expiresOn?.getTime()).toBe(exp.getTime());
    expect(sdk.properties.createdOn?.getTime()).toBe(Math.floor(clock.now() / 1000) * 1000);
  });

  it('pages GET /secrets with nextLink (page size 3) and honours maxresults', async () => {
    const c = client('kv-b');
    for (let i = 0; i < 7; i++) await c.setSecret(`paged-${i}`, `value-${i}`);
    kv.clearOperations();
    const names: string[] = [];
    for await (const p of c.listPropertiesOfSecrets()) names.push(p.name);
    expect(names.sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `paged-${i}`));
    const lists = kv.vault('kv-b').server.requests.filter((r) => r.path === '/secrets');
    expect(lists).toHaveLength(3);
    expect(lists[1]!.query).toContain('$skiptoken=');
    expect(kv.valueReads()).toHaveLength(0);

    const first = await (await raw('/secrets?api-version=7.4&maxresults=2', {}, 'kv-b')).json() as { value: Array<Record<string, unknown>>; nextLink: string };
    expect(first.value).toHaveLength(2);
    expect(first.value[0]).not.toHaveProperty('value');
    expect(first.value[0]!.id).toMatch(new RegExp(`^${kv.vault('kv-b').url}/secrets/paged-\\d$`));
    expect(first.nextLink).toMatch(/api-version=7\.4&\$skiptoken=[^&]+&maxresults=2$/);
    const bad = await raw('/secrets?api-version=7.4&maxresults=40', {}, 'kv-b');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'BadParameter' } });
  });

  it('updates properties of a version; a disabled version answers 403 SecretDisabled with the service error body', async () => {
    const c = client();
    const v1 = await c.setSecret('to-disable', 'secret-one');
    const exp = new Date(START + 10 * DAY_MS);
    const updated = await c.updateSecretProperties('to-disable', v1.properties.version!, { enabled: false, tags: { state: 'retired' }, expiresOn: exp });
    expect(updated).toMatchObject({ enabled: false, tags: { state: 'retired' } });
    expect(updated.expiresOn?.getTime()).toBe(exp.getTime());
    expect(kv.vault('kv-a').versions('to-disable')).toMatchObject([{ enabled: false, tags: { state: 'retired' }, exp: exp.getTime() }]);

    const err = await c.getSecret('to-disable').catch((e: unknown) => e) as { statusCode: number; code: string; details: unknown };
    expect(err).toMatchObject({ name: 'RestError', statusCode: 403, code: 'Forbidden' });
    expect(err.details).toMatchObject({ error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.', innerError: { code: 'SecretDisabled' } } });

    // A new version is readable again; the old one stays disabled.
    await c.setSecret('to-disable', 'secret-two');
    expect((await c.getSecret('to-disable')).value).toBe('secret-two');
  });

  it('answers 404 SecretNotFound for a missing secret or version', async () => {
    const c = client();
    await expect(c.getSecret('never-created')).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
    await c.setSecret('has-one', 'x');
    await expect(c.getSecret('has-one', { version: '0'.repeat(32) })).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
  });

  it('soft-deletes, refuses to reuse the name (409), recovers, and purges', async () => {
    const c = client();
    await c.setSecret('doomed', 'keep-me', { tags: { a: 'b' } });
    clock.advance(5000);
    const poller = await c.beginDeleteSecret('doomed', { intervalInMs: 10 });
    const deleted = await poller.pollUntilDone();
    expect(deleted.recoveryId).toBe(`${kv.vault('kv-a').url}/deletedsecrets/doomed`);
    expect(deleted.scheduledPurgeDate!.getTime() - deleted.deletedOn!.getTime()).toBe(90 * DAY_MS);
    expect(kv.vault('kv-a').deletedSecretNames()).toEqual(['doomed']);

    await expect(c.getSecret('doomed')).rejects.toMatchObject({ statusCode: 404 });
    const conflict = await c.setSecret('doomed', 'again').catch((e: unknown) => e) as { statusCode: number; details: unknown };
    expect(conflict.statusCode).toBe(409);
    expect(conflict.details).toMatchObject({ error: { code: 'Conflict', innerError: { code: 'ObjectIsDeletedButRecoverable' } } });
    const listed: string[] = [];
    for await (const d of c.listDeletedSecrets()) listed.push(d.name);
    expect(listed).toEqual(['doomed']);

    const recover = await c.beginRecoverDeletedSecret('doomed', { intervalInMs: 10 });
    const recovered = await recover.pollUntilDone();
    expect(recovered.tags).toEqual({ a: 'b' });
    expect((await c.getSecret('doomed')).value).toBe('keep-me');

    await (await c.beginDeleteSecret('doomed', { intervalInMs: 10 })).pollUntilDone();
    await c.purgeDeletedSecret('doomed');
    expect(kv.vault('kv-a').deletedSecretNames()).toEqual([]);
    await expect(c.getDeletedSecret('doomed')).rejects.toMatchObject({ statusCode: 404 });
    await c.setSecret('doomed', 'reborn');
    expect(kv.vault('kv-a').versions('doomed')).toHaveLength(1);
  });

  it('purges a soft-deleted secret on its own once the scheduled purge date has passed', async () => {
    const c = client('kv-b');
    await c.setSecret('auto-purge', 'x');
    await (await c.beginDeleteSecret('auto-purge', { intervalInMs: 10 })).pollUntilDone();
    clock.advance(91 * DAY_MS);
    expect(kv.vault('kv-b').deletedSecretNames()).toEqual([]);
  });
});

describe('Key Vault emulator: access list', () => {
  it('answers 403 Forbidden to a principal without the permission, and a withdrawn permission takes effect at once', async () => {
    const v = kv.vault('kv-a');
    await client().setSecret('guarded', 'g');
    v.allow(KEYWARDEN_APP, ['list', 'get']);

    const mine = client('kv-a', keywardenToken);
    const names: string[] = [];
    for await (const p of mine.listPropertiesOfSecrets()) names.push(p.name);
    expect(names).toContain('guarded');
    await expect(mine.setSecret('guarded', 'overwrite')).rejects.toMatchObject({ statusCode: 403, code: 'Forbidden' });

    const theirs = client('kv-a', otherToken);
    const err = await theirs.getSecret('guarded').catch((e: unknown) => e) as { statusCode: number; details: { error: { message: string; innerError: { code: string } } } };
    expect(err.statusCode).toBe(403);
    expect(err.details.error.innerError.code).toBe('ForbiddenByPolicy');
    expect(err.details.error.message).toContain(`appid=${OTHER_APP}`);

    v.withdraw(KEYWARDEN_APP, ['get']);
    await expect(mine.getSecret('guarded')).rejects.toMatchObject({ statusCode: 403 });
    const stillListed: string[] = [];
    for await (const p of mine.listPropertiesOfSecrets()) stillListed.push(p.name);
    expect(stillListed).toContain('guarded');
    expect(kv.operations().filter((o) => o.status === 403).every((o) => o.appId !== undefined)).toBe(true);
  });
});
