import type { KeywardenConfig, VaultConfig } from '../config/schema.js';
import type { SecretInfo } from '../providers/keyvault/client.js';
import { callSignal, checkMaker, classifyFailure, failureDetail, shortMessage, skipped, type DoctorContext } from './context.js';
import { keyVaultRole } from './fixes.js';
import type { DoctorCheck } from './types.js';

/**
 * Key Vault, per vault: list (scan) always; get and set only on rotation targets. Neither probe reads a real value or
 * writes anything: both address a secret that does not exist (`keywarden-doctor-probe`). Key Vault authorizes before
 * it looks the secret up, so 404 means "allowed" and 403 means "missing permission". A write probe would leave a
 * secret behind that Keywarden (without 'delete') could not clean up.
 */

export const PROBE_SECRET = 'keywarden-doctor-probe';
/** A version id that cannot exist (32 hex digits, like the real ones). */
const PROBE_VERSION = '0'.repeat(32);

const TAGGED = (s: SecretInfo) => s.tags['managed-by'] === 'keywarden' || s.tags['credential-kind'] !== undefined;

/** Vaults Keywarden writes to: mapped secrets, PATs it authenticates with, the JIT vault. */
export function configuredRotationTargets(config: KeywardenConfig): Set<string> {
  const out = new Set<string>();
  for (const m of config.keyVault.mappings) out.add(m.secret.split('/')[0]!);
  for (const ws of config.databricks.workspaces) if (ws.auth.type === 'pat' && ws.auth.keyVaultSecret) out.add(ws.auth.keyVaultSecret.split('/')[0]!);
  if (config.workflows.jit.vault) out.add(config.workflows.jit.vault);
  return out;
}

/** 404 on the probe secret = allowed; anything else is reported as what it is. */
async function probe(fn: () => Promise<unknown>): Promise<{ allowed: boolean; failure?: ReturnType<typeof classifyFailure> }> {
  try {
    await fn();
    return { allowed: true };
  } catch (err) {
    const f = classifyFailure(err);
    return f.kind === 'not-found' ? { allowed: true } : { allowed: false, failure: f };
  }
}

async function checkVault(ctx: DoctorContext, vault: VaultConfig, configuredTarget: boolean): Promise<DoctorCheck[]> {
  const make = checkMaker('keyvault', vault.name);
  const client = ctx.vaults.get(vault.name)!;
  const appId = ctx.identity.clientId;
  const checks: DoctorCheck[] = [];
  const listTitle = 'list secret properties and versions (never values)';

  let secrets: SecretInfo[];
  try {
    secrets = await client.listSecretProperties({ signal: callSignal(ctx) });
  } catch (err) {
    const f = classifyFailure(err);
    if (f.kind === 'unreachable' || f.kind === 'unauthenticated') {
      checks.push(make('reachable', `reachable at ${vault.url} and signed in`, {
        status: 'fail', required: true, detail: shortMessage(f.message),
        missing: f.kind === 'unreachable' ? 'a network path to the vault' : 'a token the vault accepts',
        fix: f.kind === 'unreachable'
          ? ['Check keyVault.vaults[].url and the network path (firewall, private endpoint, DNS).']
          : ['Check azure.tenantId and azure.credential: the identity must belong to the vault\'s tenant.'],
      }));
      return [...checks, ...skipped(make, [['list', listTitle, true], ['get', "read a value ('get')", configuredTarget], ['set', "write new versions ('set')", configuredTarget]], 'vault unreachable')];
    }
    checks.push(make('reachable', `reachable at ${vault.url} and signed in`, { status: 'pass', required: true }));
    checks.push(make('list', listTitle, { status: 'fail', required: true, detail: failureDetail(f), ...keyVaultRole(vault, appId, 'list') }));
    // Without a listing, only the config says whether this is a rotation target.
    return [...checks, ...(configuredTarget ? await writeChecks(ctx, vault, make, 'named in the config') : [])];
  }

  checks.push(make('reachable', `reachable at ${vault.url} and signed in`, { status: 'pass', required: true }));
  // Reading one secret's properties goes through its versions listing: still 'list', still no value.
  const first = secrets[0];
  let detail = `${secrets.length} secret(s)`;
  if (first) {
    try {
      const p = await client.getSecretProperties(first.name, undefined, { signal: callSignal(ctx) });
      detail += `; read properties of '${p.name}' (expires ${p.expiresAt ? new Date(p.expiresAt).toISOString().slice(0, 10) : 'never'})`;
    } catch (err) {
      checks.push(make('list', listTitle, { status: 'fail', required: true, detail: `listing worked but reading the versions of '${first.name}' failed: ${failureDetail(classifyFailure(err))}`, ...keyVaultRole(vault, appId, 'list') }));
      return checks;
    }
  }
  checks.push(make('list', listTitle, { status: 'pass', required: true, detail }));

  const tagged = secrets.filter(TAGGED).length;
  if (configuredTarget || tagged > 0) {
    checks.push(...await writeChecks(ctx, vault, make, configuredTarget ? 'named in the config' : `${tagged} secret(s) tagged for Keywarden`));
  } else {
    checks.push(make('rotation-target', 'rotation target?', { status: 'info', required: false, detail: 'scan only (no mapping, PAT or JIT vault points here, no Keywarden tags): get/set not needed' }));
  }
  return checks;
}

async function writeChecks(ctx: DoctorContext, vault: VaultConfig, make: ReturnType<typeof checkMaker>, why: string): Promise<DoctorCheck[]> {
  const client = ctx.vaults.get(vault.name)!;
  const appId = ctx.identity.clientId;
  const out: DoctorCheck[] = [];
  const get = await probe(() => client.readSecretValue(PROBE_SECRET, undefined, { signal: callSignal(ctx) }));
  out.push(get.allowed
    ? make('get', "read a value ('get')", { status: 'pass', required: true, detail: `rotation target (${why}); probed with a secret that does not exist — no value was read` })
    : make('get', "read a value ('get')", { status: 'fail', required: true, detail: failureDetail(get.failure!), ...keyVaultRole(vault, appId, 'get') }));
  const set = await probe(() => client.updateSecretProperties(PROBE_SECRET, PROBE_VERSION, { signal: callSignal(ctx) }));
  out.push(set.allowed
    ? make('set', "write new versions ('set')", { status: 'pass', required: true, detail: 'probed by updating a secret that does not exist — nothing was written' })
    : make('set', "write new versions ('set')", { status: 'fail', required: true, detail: failureDetail(set.failure!), ...keyVaultRole(vault, appId, 'set') }));
  return out;
}

export async function checkKeyVault(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const targets = configuredRotationTargets(ctx.config);
  const results = await Promise.all(ctx.config.keyVault.vaults.map((v) => checkVault(ctx, v, targets.has(v.name))));
  return results.flat();
}
