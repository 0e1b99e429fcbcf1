import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failures, startDoctorFixture, type DoctorFixture } from './doctor-fixture.js';

/**
 * The "must show": with one permission withdrawn in an emulator, `keywarden doctor` names exactly that
 * permission and how to grant it, and exits 1. The emulators enforce the permission; nothing of ours is mocked.
 */

let fx: DoctorFixture;
beforeEach(async () => {
  fx = await startDoctorFixture();
});
afterEach(async () => {
  await fx.close();
});

describe('keywarden doctor — one permission withdrawn', () => {
  it('Key Vault: without "list" on kv-prod it names Key Vault Reader on kv-prod with the az command, and exits 1', async () => {
    const vault = fx.clouds.handles.keyVault.vault('kv-prod');
    vault.allow(fx.appId, ['get', 'list', 'set']);
    vault.withdraw(fx.appId, ['list']);

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(failed.map((c) => `${c.id}@${c.scope}`)).toEqual(['keyvault.list@kv-prod']);
    expect(failed[0]!.missing).toContain('Key Vault Reader on vault kv-prod');
    expect(failed[0]!.missing).toContain("'list'");
    expect(failed[0]!.fix!.join('\n')).toContain(`az role assignment create --role "Key Vault Reader" --assignee ${fx.appId}`);
    // get and set are still granted and still checked (kv-prod is a rotation target through keyVault.mappings).
    const setCheck = report!.checks.find((c) => c.id === 'keyvault.set' && c.scope === 'kv-prod');
    expect(setCheck?.status).toBe('pass');

    const text = await fx.doctor();
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/Key Vault · kv-prod[\s\S]*✗ list secret properties/);
    expect(text.stdout).toContain('missing: Key Vault Reader on vault kv-prod');
    expect(text.stdout).toContain('(exit 1)');
  });

  it('Key Vault: without "set" on a rotation target it names Key Vault Secrets Officer, and writes nothing', async () => {
    const vault = fx.clouds.handles.keyVault.vault('kv-prod');
    vault.allow(fx.appId, ['get', 'list', 'set']);
    vault.withdraw(fx.appId, ['set']);
    const before = vault.secretNames();

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(failed.map((c) => `${c.id}@${c.scope}`)).toEqual(['keyvault.set@kv-prod']);
    expect(failed[0]!.missing).toContain('Key Vault Secrets Officer on vault kv-prod');
    expect(failed[0]!.fix!.join('\n')).toContain('--secret-permissions get list set');
    expect(vault.secretNames()).toEqual(before);
    expect(fx.clouds.handles.keyVault.operations().filter((o) => o.mutating && o.status < 300)).toEqual([]);
    expect(fx.clouds.handles.keyVault.valueReads()).toEqual([]);
  });

  it('Graph: without Application.Read.All it names that permission and admin consent, and exits 1', async () => {
    fx.clouds.handles.entra.directory.withdraw(fx.appId, 'Application.Read.All');

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(failed.map((c) => c.id)).toEqual(['graph.application-read-all']);
    expect(failed[0]!.missing).toContain('Microsoft Graph application permission Application.Read.All (admin consent)');
    expect(failed[0]!.fix!.join('\n')).toMatch(/API permissions → Add a permission → Microsoft Graph → Application permissions → Application\.Read\.All → Grant admin consent/);
    expect(failed[0]!.fix!.join('\n')).toContain('9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30');
  });

  it('Graph: without Application.ReadWrite.OwnedBy it names that permission (checked without any write)', async () => {
    fx.clouds.handles.entra.directory.withdraw(fx.appId, 'Application.ReadWrite.OwnedBy');
    const graphRequests = () => fx.clouds.handles.entra.graph.requests.filter((r) => r.method !== 'GET');

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    expect(failures(report!).map((c) => c.id)).toEqual(['graph.application-readwrite-ownedby']);
    expect(failures(report!)[0]!.missing).toContain('Application.ReadWrite.OwnedBy');
    expect(graphRequests()).toEqual([]);
  });

  it('Graph: without GroupMember.Read.All while approvals.groups is set, it names that permission', async () => {
    fx.clouds.handles.entra.directory.withdraw(fx.appId, 'GroupMember.Read.All');
    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    expect(failures(report!).map((c) => c.id)).toEqual(['graph.groupmember-read-all']);
    expect(failures(report!)[0]!.missing).toContain('GroupMember.Read.All');
  });

  it('Graph: without AuditLog.Read.All it warns (last use of Entra secrets unknown) and names the grant, exit 0', async () => {
    fx.clouds.handles.entra.directory.withdraw(fx.appId, 'AuditLog.Read.All');
    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(0);
    const check = report!.checks.find((c) => c.id === 'graph.auditlog-read-all')!;
    expect(check).toMatchObject({ status: 'warn', required: false });
    expect(check.detail).toContain('last use of Entra secrets is unknown');
    expect(check.missing).toContain('Microsoft Graph application permission AuditLog.Read.All (admin consent)');
    expect(check.fix!.join('\n')).toContain('b0afded3-3588-46d8-8b3d-9842eec6e8e1');
  });

  it('Databricks: when Keywarden is no longer in the admins group of ws-dev it says to add it there, and exits 1', async () => {
    const ws = fx.clouds.handles.databricks.workspace('ws-dev');
    ws.model.findServicePrincipal(fx.appId)!.groups.delete('admins');

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(new Set(failed.map((c) => c.scope))).toEqual(new Set(['ws-dev']));
    const tm = failed.find((c) => c.id === 'databricks.token-management')!;
    expect(tm.missing).toContain('"admins" group of ws-dev');
    expect(tm.fix!.join('\n')).toContain(`application id ${fx.appId}`);
    expect(tm.fix!.join('\n')).toContain('Groups → admins → Add members');
    expect(failed.map((c) => c.id)).toContain('databricks.obo');
  });

  it('Databricks: an SP that owns a PAT but lost CAN_USE on tokens is named, with the token-permissions grant', async () => {
    const ws = fx.clouds.handles.databricks.workspace('ws-prod');
    const etl = fx.clouds.seeds.entra.apps['etl-ingest']!.appId;
    // The grant is removed behind the API's back, so sp-etl's existing tokens stay listed (a stale grant list).
    ws.model.grants = ws.model.grants.filter((g) => g.name !== etl);

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(failed.map((c) => `${c.id}@${c.scope}`)).toEqual(['databricks.obo@ws-prod']);
    expect(failed[0]!.missing).toContain(`CAN_USE on tokens for sp-etl (${etl})`);
    expect(failed[0]!.fix!.join('\n')).toContain(`"service_principal_name":"${etl}","permission_level":"CAN_USE"`);
  });

  it('Data Factory: without Reader on the factory it names Reader on adf-prod with the az command, and exits 1', async () => {
    fx.clouds.handles.dataFactory.state.withdrawAccess(fx.appId);

    const { code, report } = await fx.doctor(['--json']);
    expect(code).toBe(1);
    const failed = failures(report!);
    expect(failed.map((c) => `${c.id}@${c.scope}`)).toEqual(['datafactory.reader@adf-prod']);
    expect(failed[0]!.missing).toContain('Reader on data factory adf-prod');
    expect(failed[0]!.fix!.join('\n')).toContain(`az role assignment create --role Reader --assignee ${fx.appId} --scope /subscriptions/`);
  });
});
