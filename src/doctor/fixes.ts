/**
 * How to grant each permission Keywarden needs, in the words of docs/deploy.md §3 (the least-privilege table):
 * the role or permission name, the scope, the portal path and the CLI command.
 */

/** Well-known Microsoft Graph application role ids (the same in every tenant). */
export const GRAPH_APP_ROLE_IDS: Record<string, string> = {
  'Application.Read.All': '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30',
  'Application.ReadWrite.OwnedBy': '18a4783c-866b-4cc7-a460-3d5e5662c884',
  'GroupMember.Read.All': '98830695-27a2-44f7-8c18-0c3ebc9698f6',
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eec6e8e1',
};

export interface Grant {
  missing: string;
  fix: string[];
}

const who = (appId: string | undefined): string => appId ?? '<Keywarden client id>';

export function databricksAdmin(workspace: { name: string; host: string }, appId: string | undefined, viaPat?: string): Grant {
  if (viaPat) {
    return {
      missing: `workspace admin: the PAT in ${viaPat} must belong to a member of the workspace's admins group`,
      fix: [
        `Replace the PAT in Key Vault secret ${viaPat} with one owned by a workspace admin of ${workspace.name} (or add its owner to the admins group: ${workspace.host} → Settings → Identity and access → Groups → admins → Add members).`,
      ],
    };
  }
  return {
    missing: `workspace admin — Keywarden's identity (${who(appId)}) must be a service principal in the "admins" group of ${workspace.name}`,
    fix: [
      `${workspace.host} → Settings → Identity and access → Service principals → Add service principal → Microsoft Entra ID managed → application id ${who(appId)} (skip if it is listed).`,
      `Then Settings → Identity and access → Groups → admins → Add members → that service principal.`,
      `CLI: databricks service-principals create --application-id ${who(appId)}  and add it to the admins group (databricks groups patch <admins-group-id> …).`,
    ],
  };
}

export function databricksCanUse(workspace: { name: string; host: string }, sps: Array<{ name: string; applicationId: string }>): Grant {
  const list = sps.map((s) => `${s.name} (${s.applicationId})`).join(', ');
  const acl = sps.map((s) => `{"service_principal_name":"${s.applicationId}","permission_level":"CAN_USE"}`).join(',');
  return {
    missing: `CAN_USE on tokens for ${list} in ${workspace.name} (on-behalf-of token creation for rotation and JIT)`,
    fix: [
      `${workspace.host} → Settings → Advanced → Personal Access Tokens → Permission Settings → add ${list} with "Can Use".`,
      `CLI: databricks token-management update-permissions --json '{"access_control_list":[${acl}]}'  (PATCH /api/2.0/permissions/authorization/tokens; it adds, never removes).`,
    ],
  };
}

export function keyVaultRole(vault: { name: string; url: string }, appId: string | undefined, need: 'list' | 'get' | 'set'): Grant {
  const role = need === 'list' ? 'Key Vault Reader' : 'Key Vault Secrets Officer';
  const policy = need === 'list' ? 'list' : 'get list set';
  const why = need === 'list'
    ? 'to list secret properties and versions (never values) for the scan'
    : `to ${need === 'get' ? 'read the current value (PAT auth, verification)' : 'write new versions and update properties'} — this vault is a rotation target`;
  return {
    missing: `${role} on vault ${vault.name} (secret permission '${need}') ${why}`,
    fix: [
      `Azure portal → Key vaults → ${vault.name} → Access control (IAM) → Add role assignment → ${role} → members: Keywarden's identity (${who(appId)}).`,
      `CLI: az role assignment create --role "${role}" --assignee ${who(appId)} --scope $(az keyvault show --name ${vault.name} --query id -o tsv)`,
      `Vaults on access policies instead of RBAC: az keyvault set-policy --name ${vault.name} --spn ${who(appId)} --secret-permissions ${policy}`,
    ],
  };
}

export function graphAppRole(permission: keyof typeof GRAPH_APP_ROLE_IDS | string, appId: string | undefined, spObjectId: string | undefined, why: string): Grant {
  const roleId = GRAPH_APP_ROLE_IDS[permission] ?? '<app role id>';
  return {
    missing: `Microsoft Graph application permission ${permission} (admin consent) — ${why}`,
    fix: [
      `Entra admin center → App registrations → Keywarden's app (${who(appId)}) → API permissions → Add a permission → Microsoft Graph → Application permissions → ${permission} → Grant admin consent.`,
      `Managed identity (no app registration): az rest --method POST --uri https://graph.microsoft.com/v1.0/servicePrincipals/${spObjectId ?? '<Keywarden SP object id>'}/appRoleAssignments --body '{"principalId":"${spObjectId ?? '<Keywarden SP object id>'}","resourceId":"<Microsoft Graph SP object id>","appRoleId":"${roleId}"}'`,
      'A new grant shows up in the next token Keywarden gets (restart it, or wait up to an hour).',
    ],
  };
}

export function graphOwner(appIds: string[], spObjectId: string | undefined): Grant {
  const owner = spObjectId ?? '<Keywarden SP object id>';
  return {
    missing: `ownership: Keywarden's service principal must be an owner of each app it may rotate (${appIds.length ? appIds.join(', ') : 'none is owned yet'})`,
    fix: [
      'Entra admin center → App registrations → <app to rotate> → Owners → Add owners → Keywarden\'s service principal.',
      ...(appIds.length ? appIds : ['<app id>']).map((id) => `CLI: az ad app owner add --id ${id} --owner-object-id ${owner}`),
    ],
  };
}

export function factoryReader(factory: { name: string; subscriptionId: string; resourceGroup: string }, appId: string | undefined): Grant {
  const scope = `/subscriptions/${factory.subscriptionId}/resourceGroups/${factory.resourceGroup}/providers/Microsoft.DataFactory/factories/${factory.name}`;
  return {
    missing: `Reader on data factory ${factory.name} (or its resource group ${factory.resourceGroup}) to read linked services, datasets, pipelines and triggers`,
    fix: [
      `Azure portal → Data factories → ${factory.name} → Access control (IAM) → Add role assignment → Reader → members: Keywarden's identity (${who(appId)}).`,
      `CLI: az role assignment create --role Reader --assignee ${who(appId)} --scope ${scope}`,
    ],
  };
}

export const REINSTALL_APP: string[] = [
  'In Teams: open the team → ⋯ → Manage team → Apps → add Keywarden again (or remove and re-add it); Keywarden records the channel reference on installation.',
  'Then run `keywarden doctor` again; `/readyz` turns 200 once every channel reference is alive.',
];

export const STANDARD_CHANNEL: string[] = [
  'Bots can post only in standard channels: Teams pauses apps in private and shared channels.',
  'Create or pick a standard channel for support, add Keywarden to its team, and point teams.channels[].conversationId at it.',
];
