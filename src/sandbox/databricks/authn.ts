import type { EmulatorRequest, EmulatorResponse } from '../emulator.js';
import type { TokenValidator } from '../auth.js';
import { scopesAllow, type WorkspaceModel, type WorkspacePrincipal } from './model.js';
import { apiError, authError } from './responses.js';

/** Who is calling: a PAT of this workspace, or an Entra token for the AzureDatabricks resource mapped to an SP. */

export const AZURE_DATABRICKS_APP_ID = '2ff814a6-3304-4ab8-85cb-cd0e6f879c1d';
const ARM_AUDIENCES = ['https://management.core.windows.net/', 'https://management.azure.com', 'https://management.azure.com/', 'https://management.core.windows.net'];

export interface AuthOptions {
  tokenValidator?: TokenValidator;
  /** Answer auth failures with the HTML page instead of JSON (G3). */
  htmlAuthErrors: boolean;
}

export type Caller = { principal: WorkspacePrincipal; via: 'pat' | 'entra' };

export function authenticate(ws: WorkspaceModel, req: EmulatorRequest, opts: AuthOptions): Caller | EmulatorResponse {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) return authError(401, 'Credential was not sent or was of an unsupported type for this API.', opts.htmlAuthErrors, req.path);
  const bearer = match[1]!;

  if (bearer.startsWith('dapi')) {
    const token = ws.findTokenByValue(bearer);
    const owner = token ? ws.principals.get(token.ownerId) : undefined;
    if (!token || !ws.isUsable(token) || !owner || !owner.active) return authError(403, 'Invalid access token.', opts.htmlAuthErrors, req.path);
    // A principal without CAN_USE (e.g. removed from the granted group) cannot use the tokens it still has.
    if (!ws.canUseTokens(owner)) return authError(403, 'Invalid access token.', opts.htmlAuthErrors, req.path);
    if (ws.conf.get('enableTokensConfig') === 'false') {
      return apiError(403, 'PERMISSION_DENIED', 'Personal access tokens are disabled for this workspace (workspace-conf enableTokensConfig is "false").');
    }
    // CAN_USE is checked at every use: an owner who lost it indirectly (left a granted group) keeps tokens that do not work.
    if (!ws.canUseTokens(owner)) return apiError(403, 'PERMISSION_DENIED', `${owner.userName} is not authorized to use personal access tokens (needs CAN_USE on authorization/tokens).`);
    // The one scope rule emulated: the Token APIs belong to the \`authentication\` scope.
    if (/^\/api\/2\.0\/(preview\/)?token(-management)?\//.test(req.path) && !scopesAllow(token.scopes, 'authentication', req.method)) {
      return apiError(403, 'PERMISSION_DENIED', 'Provided access token does not have required scopes: authentication');
    }
    ws.markUsed(token);
    return { principal: owner, via: 'pat' };
  }

  const check = opts.tokenValidator?.validate(bearer, AZURE_DATABRICKS_APP_ID);
  if (!check || !check.ok) return authError(403, 'Invalid access token.', opts.htmlAuthErrors, req.path);
  const appId = check.principal.appId;
  let sp = ws.findServicePrincipal(appId);
  if (!sp) {
    // With an ARM token and the workspace resource id, Databricks adds a Contributor SP on first use (as admin).
    const mgmt = req.headers['x-databricks-azure-sp-management-token'];
    const resourceId = req.headers['x-databricks-azure-workspace-resource-id'];
    const mgmtOk = typeof mgmt === 'string' && typeof resourceId === 'string' && resourceId.length > 0 &&
      ARM_AUDIENCES.some((aud) => opts.tokenValidator?.validate(mgmt, aud).ok);
    if (!mgmtOk) {
      return apiError(403, 'PERMISSION_DENIED',
        `Service principal ${appId} is not a member of workspace ${ws.workspaceId}. Add it via SCIM, or send X-Databricks-Azure-SP-Management-Token and X-Databricks-Azure-Workspace-Resource-Id.`);
    }
    sp = ws.addPrincipal({ kind: 'service-principal', userName: appId, applicationId: appId, displayName: appId, active: true, groups: ['admins'] });
  }
  if (!sp.active) return authError(403, 'Invalid access token.', opts.htmlAuthErrors, req.path);
  return { principal: sp, via: 'entra' };
}

export function isResponse(x: Caller | EmulatorResponse): x is EmulatorResponse {
  return (x as EmulatorResponse).status !== undefined;
}
