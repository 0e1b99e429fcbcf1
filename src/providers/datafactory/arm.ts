import { AzureRestError, errorFromBody, listAllPages, restClientFor, type AzureRestClient, type AzureRestResponse, type AzureServiceClientOptions } from '../entra/azure-rest.js';

/**
 * Data Factory definitions as raw ARM JSON (api-version 2018-06-01). Raw on purpose: the ARM SDK flattens
 * typeProperties, and the blast-radius search walks the JSON for Key Vault secret references wherever they sit.
 */

export const ADF_API_VERSION = '2018-06-01';

export class ArmError extends AzureRestError {
  constructor(code: string, statusCode: number, message: string, requestId?: string) {
    super(code, statusCode, message, requestId);
    this.name = 'ArmError';
  }
}

/** A factory child resource (linked service, dataset, pipeline, trigger) exactly as ARM returns it. */
export interface AdfResource {
  id: string;
  name: string;
  type: string;
  etag?: string;
  properties: Record<string, unknown>;
}

export interface AdfFactory {
  id: string;
  name: string;
  type: string;
  location?: string;
  properties?: Record<string, unknown>;
}

export interface FactoryRef {
  subscriptionId: string;
  resourceGroup: string;
  factory: string;
}

export interface FactoryDefinitions {
  linkedServices: AdfResource[];
  datasets: AdfResource[];
  pipelines: AdfResource[];
  triggers: AdfResource[];
}

export interface DataFactoryClientOptions extends AzureServiceClientOptions {
  /** ARM endpoint, e.g. https://management.azure.com. */
  baseUrl: string;
  /** Default https://management.azure.com/.default whatever host baseUrl names. */
  scope?: string;
}

type Child = 'linkedservices' | 'datasets' | 'pipelines' | 'triggers';

export class DataFactoryClient {
  readonly baseUrl: string;
  private readonly rest: AzureRestClient;

  constructor(options: DataFactoryClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.rest = restClientFor(options, { defaultScope: 'https://management.azure.com/.default', name: 'Azure Resource Manager (Data Factory)' });
  }

  listFactories(subscriptionId: string, options: { signal?: AbortSignal } = {}): Promise<AdfFactory[]> {
    return this.listAll<AdfFactory>(`/subscriptions/${encodeURIComponent(subscriptionId)}/providers/Microsoft.DataFactory/factories`, options.signal);
  }

  listLinkedServices(ref: FactoryRef, options: { signal?: AbortSignal } = {}): Promise<AdfResource[]> {
    return this.listChildren(ref, 'linkedservices', options.signal);
  }

  listDatasets(ref: FactoryRef, options: { signal?: AbortSignal } = {}): Promise<AdfResource[]> {
    return this.listChildren(ref, 'datasets', options.signal);
  }

  listPipelines(ref: FactoryRef, options: { signal?: AbortSignal } = {}): Promise<AdfResource[]> {
    return this.listChildren(ref, 'pipelines', options.signal);
  }

  listTriggers(ref: FactoryRef, options: { signal?: AbortSignal } = {}): Promise<AdfResource[]> {
    return this.listChildren(ref, 'triggers', options.signal);
  }

  /** Everything the blast-radius search needs from one factory. */
  async readFactory(ref: FactoryRef, options: { signal?: AbortSignal } = {}): Promise<FactoryDefinitions> {
    const [linkedServices, datasets, pipelines, triggers] = await Promise.all([
      this.listLinkedServices(ref, options), this.listDatasets(ref, options), this.listPipelines(ref, options), this.listTriggers(ref, options),
    ]);
    return { linkedServices, datasets, pipelines, triggers };
  }

  private listChildren(ref: FactoryRef, child: Child, signal?: AbortSignal): Promise<AdfResource[]> {
    const path = `/subscriptions/${encodeURIComponent(ref.subscriptionId)}/resourceGroups/${encodeURIComponent(ref.resourceGroup)}`
      + `/providers/Microsoft.DataFactory/factories/${encodeURIComponent(ref.factory)}/${child}`;
    return this.listAll<AdfResource>(path, signal);
  }

  private listAll<T>(path: string, signal?: AbortSignal): Promise<T[]> {
    return listAllPages<T>(this.rest, `${this.baseUrl}${path}?api-version=${ADF_API_VERSION}`, {
      nextKey: 'nextLink',
      signal,
      failed: (res) => this.error(res, path),
      wrongShape: (res, problem) => new ArmError('UnexpectedResponse', res.status, `ARM GET ${path} answered ${res.status} with ${problem} — check dataFactory.armUrl (https://management.azure.com) and any proxy in between; the next scan tries again.`, res.requestId),
      looping: () => new ArmError('PagingLoop', 0, `ARM kept returning nextLink for ${path}; stopped after 10000 pages.`),
    });
  }

  private error(res: AzureRestResponse, path: string): ArmError {
    const { code, message } = errorFromBody(res.body, res.status);
    const fix = res.status === 403
      ? ' — give Keywarden\'s identity the Reader role (or Data Factory Contributor) on the factory or its resource group'
      : res.status === 404 ? ' — check dataFactory.factories (subscriptionId, resourceGroup, name) in the config'
        : res.status === 401 ? ' — check the Azure credential and tenant in the config' : '';
    return new ArmError(code, res.status, `ARM GET ${path} failed: ${code}: ${message}${fix}`, res.requestId);
  }
}
