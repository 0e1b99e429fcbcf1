import type { Application, DirectoryObject, PasswordCredential, ServicePrincipal, User } from '@microsoft/microsoft-graph-types';
import { registerSecret } from '../../logging/redact.js';
import { AzureRestError, eachPage, errorFromBody, isRetryableStatus, listAllPages, restClientFor, sleepWithSignal, type AzureRestClient, type PagingInput, type AzureRestResponse, type AzureServiceClientOptions } from './azure-rest.js';

/** A thin typed client for the Microsoft Graph calls Keywarden needs (app/SP credentials, owners, approver groups). */

export class GraphError extends AzureRestError {
  constructor(code: string, statusCode: number, message: string, requestId?: string) {
    super(code, statusCode, message, requestId);
    this.name = 'GraphError';
  }
}

export interface GraphClientOptions extends AzureServiceClientOptions {
  /** Graph root, e.g. https://graph.microsoft.com (a trailing /v1.0 is accepted). */
  baseUrl: string;
  /** Token scope (default https://graph.microsoft.com/.default, whatever host the base URL names). */
  scope?: string;
}

export interface ListOptions {
  select?: string[];
  /** OData filter, e.g. "appId eq '…'". */
  filter?: string;
  /** Page size asked for (1–999, default 999; Graph gives at most 100 a page when it expands). */
  top?: number;
  /** A relationship to read with each item, e.g. `owners` (Graph gives at most 20 of them, with no link to more). */
  expand?: string;
  signal?: AbortSignal;
}

export type CredentialHolderKind = 'application' | 'servicePrincipal';

export interface NewPassword {
  keyId: string;
  /** The only time the value exists outside Entra: registered for redaction at once. */
  secretText: string;
  hint: string;
  displayName: string;
  startDateTime: string;
  endDateTime: string;
}

/** One row of the beta report `reports/appCredentialSignInActivities` (the fields Keywarden reads; docs' samples differ, so both spellings). */
export interface AppCredentialSignInActivity {
  keyId?: string | null;
  /** clientSecret | certificate (documented); the samples say "secret". */
  keyType?: string | null;
  appId?: string | null;
  appObjectId?: string | null;
  servicePrincipalObjectId?: string | null;
  credentialOrigin?: string | null;
  expirationDateTime?: string | null;
  /** The docs' samples use this name instead of expirationDateTime. */
  expirationDate?: string | null;
  signInActivity?: { lastSignInDateTime?: string | null; lastSignInRequestId?: string | null } | null;
}

export const DEFAULT_APP_SELECT = ['id', 'appId', 'displayName', 'createdDateTime', 'passwordCredentials', 'keyCredentials'];
export const DEFAULT_SP_SELECT = ['id', 'appId', 'displayName', 'accountEnabled', 'passwordCredentials', 'keyCredentials'];

const COLLECTION: Record<CredentialHolderKind, string> = { application: 'applications', servicePrincipal: 'servicePrincipals' };

export class GraphClient {
  readonly baseUrl: string;
  private readonly rest: AzureRestClient;

  constructor(options: GraphClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '').replace(/\/v1\.0$/, '');
    this.rest = restClientFor(options, { defaultScope: 'https://graph.microsoft.com/.default', name: 'Microsoft Graph' });
  }

  listApplications(options: ListOptions = {}): Promise<Application[]> {
    return this.listAll<Application>('applications', { select: DEFAULT_APP_SELECT, ...options });
  }

  listServicePrincipals(options: ListOptions = {}): Promise<ServicePrincipal[]> {
    return this.listAll<ServicePrincipal>('servicePrincipals', { select: DEFAULT_SP_SELECT, ...options });
  }

  /** Applications page by page (999 each, 100 with `expand`); the next page is read once `onPage` resolves. */
  eachApplicationsPage(onPage: (apps: Application[]) => Promise<void>, options: ListOptions = {}): Promise<void> {
    return this.eachPageOf<Application>('applications', { select: DEFAULT_APP_SELECT, ...options }, onPage);
  }

  /** Service principals page by page (999 each); the next page is read once `onPage` resolves. */
  eachServicePrincipalsPage(onPage: (sps: ServicePrincipal[]) => Promise<void>, options: ListOptions = {}): Promise<void> {
    return this.eachPageOf<ServicePrincipal>('servicePrincipals', { select: DEFAULT_SP_SELECT, ...options }, onPage);
  }

  getApplication(objectId: string, options: { select?: string[]; signal?: AbortSignal } = {}): Promise<Application> {
    return this.getHolder<Application>('application', objectId, options);
  }

  getServicePrincipal(objectId: string, options: { select?: string[]; signal?: AbortSignal } = {}): Promise<ServicePrincipal> {
    return this.getHolder<ServicePrincipal>('servicePrincipal', objectId, options);
  }

  /** Users (id, displayName, userPrincipalName, mail, accountEnabled), e.g. filtered `userPrincipalName in ('a','b')`. */
  listUsers(options: ListOptions = {}): Promise<User[]> {
    return this.listAll<User>('users', { select: ['id', 'displayName', 'userPrincipalName', 'mail', 'accountEnabled'], ...options });
  }

  /** Owners of an application (users and service principals), with `@odata.type`. */
  listOwners(appObjectId: string, options: { signal?: AbortSignal; target?: CredentialHolderKind } = {}): Promise<DirectoryObject[]> {
    return this.listAll<DirectoryObject>(`${COLLECTION[options.target ?? 'application']}/${encodeURIComponent(appObjectId)}/owners`, { signal: options.signal, top: 999 });
  }

  /**
   * Adds a client secret. Never retried blindly: after a failure that may have created it (throttling, 5xx, timeout),
   * the credential is looked up by displayName; an orphan (created, value lost) is removed before one retry.
   * Use a displayName unique to this rotation.
   */
  async addPassword(objectId: string, input: { displayName: string; endDateTime: string | number | Date; signal?: AbortSignal; target?: CredentialHolderKind }): Promise<NewPassword> {
    const target = input.target ?? 'application';
    const url = `${this.baseUrl}/v1.0/${COLLECTION[target]}/${encodeURIComponent(objectId)}/addPassword`;
    const body = { passwordCredential: { displayName: input.displayName, endDateTime: new Date(input.endDateTime).toISOString() } };
    const before = new Set((await this.passwordsOf(target, objectId, input.signal)).map((p) => p.keyId));
    let lastError: Error | undefined;
    for (let attempt = 0; attempt <= this.rest.maxRetries; attempt += 1) {
      let wait: number;
      try {
        const res = await this.rest.send({ method: 'POST', url, body, signal: input.signal, retry: 'never' });
        if (res.status === 200) return this.newPassword(res);
        lastError = this.error(res, `add a client secret to ${target} ${objectId}`);
        if (!isRetryableStatus(res.status) || !this.rest.willWait(res.retryAfterMs)) throw lastError;
        wait = this.rest.retryDelay(attempt, res.retryAfterMs);
      } catch (err) {
        if (!(err instanceof AzureRestError) || !['Timeout', 'NetworkError'].includes(err.code) || input.signal?.aborted) throw err;
        lastError = err;
        // A request that timed out may still land: give it as long again before looking for what it created.
        wait = this.rest.retryDelay(attempt, undefined) + (err.code === 'Timeout' ? this.rest.timeoutMs : 0);
      }
      await sleepWithSignal(wait, input.signal);
      await this.removeOrphans(target, objectId, input.displayName, before, input.signal);
    }
    throw lastError ?? new GraphError('Unknown', 0, 'addPassword failed');
  }

  /** Removes a client secret by keyId; 'already-gone' when Graph no longer has it (404). */
  async removePassword(objectId: string, keyId: string, options: { signal?: AbortSignal; target?: CredentialHolderKind } = {}): Promise<'removed' | 'already-gone'> {
    const target = options.target ?? 'application';
    const res = await this.rest.send({
      method: 'POST', url: `${this.baseUrl}/v1.0/${COLLECTION[target]}/${encodeURIComponent(objectId)}/removePassword`,
      body: { keyId }, signal: options.signal, retry: 'safe',
    });
    if (res.status === 204 || res.status === 200) return 'removed';
    if (res.status === 404) return 'already-gone';
    throw this.error(res, `remove client secret ${keyId} from ${target} ${objectId}`);
  }

  /**
   * Beta usage report: the last sign-in of each app credential that has one (keyId → signInActivity). Needs
   * AuditLog.Read.All (and Entra ID P1/P2, global cloud); a 403 is thrown as a GraphError for the caller to degrade on.
   */
  listAppCredentialSignInActivities(options: { filter?: string; signal?: AbortSignal } = {}): Promise<AppCredentialSignInActivity[]> {
    return this.listAll<AppCredentialSignInActivity>('reports/appCredentialSignInActivities', { ...options, version: 'beta', top: null });
  }

  /** Whether a user (Entra object id) is a member, directly or transitively, of any of the groups. */
  async isMemberOfAny(userObjectId: string, groupIds: string[], options: { signal?: AbortSignal } = {}): Promise<boolean> {
    for (let i = 0; i < groupIds.length; i += 20) {
      const res = await this.rest.send({
        method: 'POST', url: `${this.baseUrl}/v1.0/users/${encodeURIComponent(userObjectId)}/checkMemberGroups`,
        body: { groupIds: groupIds.slice(i, i + 20) }, signal: options.signal, retry: 'safe',
      });
      if (res.status === 404) return false;
      if (res.status !== 200) throw this.error(res, `check group membership of user ${userObjectId}`);
      if (((res.body as { value?: string[] }).value ?? []).length > 0) return true;
    }
    return false;
  }

  private async getHolder<T>(target: CredentialHolderKind, objectId: string, options: { select?: string[]; signal?: AbortSignal }): Promise<T> {
    const url = new URL(`${this.baseUrl}/v1.0/${COLLECTION[target]}/${encodeURIComponent(objectId)}`);
    if (options.select) url.searchParams.set('$select', options.select.join(','));
    const res = await this.rest.send({ method: 'GET', url: url.toString(), signal: options.signal, retry: 'safe' });
    if (res.status !== 200) throw this.error(res, `read ${target} ${objectId}`);
    return res.body as T;
  }

  private async passwordsOf(target: CredentialHolderKind, objectId: string, signal?: AbortSignal): Promise<PasswordCredential[]> {
    const holder = await this.getHolder<{ passwordCredentials?: PasswordCredential[] }>(target, objectId, { select: ['id', 'passwordCredentials'], signal });
    return holder.passwordCredentials ?? [];
  }

  private async removeOrphans(target: CredentialHolderKind, objectId: string, displayName: string, before: Set<string | null | undefined>, signal?: AbortSignal): Promise<void> {
    const now = await this.passwordsOf(target, objectId, signal);
    for (const p of now) {
      if (p.displayName === displayName && p.keyId && !before.has(p.keyId)) await this.removePassword(objectId, p.keyId, { signal, target });
    }
  }

  private newPassword(res: AzureRestResponse): NewPassword {
    const p = res.body as PasswordCredential;
    if (typeof p.secretText !== 'string' || !p.keyId) throw new GraphError('InvalidResponse', res.status, 'Graph answered addPassword without secretText/keyId.', res.requestId);
    registerSecret(p.secretText);
    return {
      keyId: p.keyId, secretText: p.secretText, hint: p.hint ?? p.secretText.slice(0, 3), displayName: p.displayName ?? '',
      startDateTime: p.startDateTime ?? '', endDateTime: p.endDateTime ?? '',
    };
  }

  /** `top: null` leaves the page size to Graph (the beta reports document no maximum). */
  private async listAll<T>(path: string, options: Omit<ListOptions, 'top'> & { top?: number | null; version?: 'v1.0' | 'beta' }): Promise<T[]> {
    return listAllPages<T>(this.rest, this.listUrl(path, options), this.paging(path, options.signal));
  }

  private eachPageOf<T>(path: string, options: ListOptions, onPage: (items: T[]) => Promise<void>): Promise<void> {
    return eachPage<T>(this.rest, this.listUrl(path, options), this.paging(path, options.signal), onPage);
  }

  private listUrl(path: string, options: Omit<ListOptions, 'top'> & { top?: number | null; version?: 'v1.0' | 'beta' }): string {
    const url = new URL(`${this.baseUrl}/${options.version ?? 'v1.0'}/${path}`);
    if (options.select) url.searchParams.set('$select', options.select.join(','));
    if (options.filter) url.searchParams.set('$filter', options.filter);
    if (options.expand) url.searchParams.set('$expand', options.expand);
    if (options.top !== null) url.searchParams.set('$top', String(options.top ?? 999));
    return url.toString();
  }

  private paging(path: string, signal: AbortSignal | undefined): PagingInput {
    return {
      nextKey: '@odata.nextLink',
      signal,
      failed: (res) => this.error(res, `list ${path}`),
      wrongShape: (res, problem) => new GraphError('UnexpectedResponse', res.status, `Graph could not list ${path}: it answered ${res.status} with ${problem} — check entra.graphUrl (https://graph.microsoft.com) and any proxy in between; the next scan tries again.`, res.requestId),
      looping: () => new GraphError('PagingLoop', 0, `Graph kept returning @odata.nextLink for ${path}; stopped after 10000 pages.`),
    };
  }

  private error(res: AzureRestResponse, action: string): GraphError {
    const { code, message } = errorFromBody(res.body, res.status);
    const fix = res.status === 403
      ? ' — grant the app Application.Read.All (inventory), Application.ReadWrite.OwnedBy and make its service principal an owner (rotation), GroupMember.Read.All (approver groups), User.ReadBasic.All (owners\' object ids), with admin consent'
      : res.status === 401 ? ' — check the credential and tenant in the azure config'
        : res.status === 429 ? ' — Graph is throttling; the scan will retry later'
          : '';
    return new GraphError(code, res.status, `Graph could not ${action}: ${code}: ${message}${fix}`, res.requestId);
  }
}
