import { DataFactoryClient } from '../providers/datafactory/arm.js';
import { callSignal, checkMaker, classifyFailure, failureDetail, shortMessage, type DoctorContext } from './context.js';
import { factoryReader } from './fixes.js';
import type { DoctorCheck } from './types.js';

/** Data Factory, per factory: Reader is proved by listing linked services (what the blast-radius search reads). */
export async function checkDataFactory(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const { armUrl, factories } = ctx.config.dataFactory;
  if (factories.length === 0) return [];
  const client = new DataFactoryClient({ baseUrl: armUrl, credential: ctx.credential, clock: ctx.clock, timeoutMs: ctx.timeoutMs, maxRetries: 1 });
  return Promise.all(factories.map(async (factory): Promise<DoctorCheck> => {
    const make = checkMaker('datafactory', factory.name);
    const title = 'Reader: list linked services (which pipelines use which secret)';
    try {
      const linked = await client.listLinkedServices({ subscriptionId: factory.subscriptionId, resourceGroup: factory.resourceGroup, factory: factory.name }, { signal: callSignal(ctx) });
      return make('reader', title, { status: 'pass', required: true, detail: `${linked.length} linked service(s)` });
    } catch (err) {
      const f = classifyFailure(err);
      if (f.kind === 'forbidden') return make('reader', title, { status: 'fail', required: true, detail: failureDetail(f), ...factoryReader(factory, ctx.identity.clientId) });
      if (f.kind === 'not-found') {
        return make('reader', title, {
          status: 'fail', required: true, detail: shortMessage(f.message), missing: 'the factory named in the config',
          fix: ['Check dataFactory.factories[] (name, subscriptionId, resourceGroup): az datafactory list --query "[].{name:name, id:id}"'],
        });
      }
      return make('reader', title, {
        status: 'fail', required: true, detail: shortMessage(f.message),
        missing: f.kind === 'unreachable' ? 'a network path to Azure Resource Manager' : 'a token ARM accepts',
        fix: f.kind === 'unreachable' ? ['Check dataFactory.armUrl and outbound HTTPS to management.azure.com.'] : ['Check azure.credential and azure.tenantId.'],
      });
    }
  }));
}
