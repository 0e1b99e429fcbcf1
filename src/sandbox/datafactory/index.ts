import type { Clock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { TokenValidator } from '../auth.js';
import { EmulatorServer } from '../emulator.js';
import { ensureSandboxTls, TEST_CA_DIR, type SandboxTls } from '../tls.js';
import { armFaultBody, createArmHandler } from './arm.js';
import type { PipelineRun, RunnerDeps } from './runner.js';
import { DataFactoryState } from './state.js';

/** Emulated Azure Resource Manager for Data Factory (HTTPS), checking ARM-audience tokens from the Entra emulator. */

export interface DataFactoryEmulatorOptions {
  /** The Entra emulator's validator (handle.validator). */
  validator: TokenValidator;
  clock?: Clock;
  tls?: SandboxTls;
  /** Items per page before a nextLink (default 50). */
  pageSize?: number;
  port?: number;
  host?: string;
  /** Managed-identity tokens for the factories' pipelines (createRun); without it createRun answers 501. */
  identityToken?: RunnerDeps['identityToken'];
  /** Real ms per Wait / Retry-After second in emulated runs (default 20). */
  msPerSecond?: number;
}

export interface DataFactoryEmulator {
  /** ARM endpoint, e.g. https://127.0.0.1:PORT (what config dataFactory.armUrl points at). */
  url: string;
  state: DataFactoryState;
  server: EmulatorServer;
  pageSize: number;
  /** Pipeline runs started with createRun, by run id. */
  runs: Map<string, PipelineRun>;
  close(): Promise<void>;
}

export async function startDataFactoryEmulator(options: DataFactoryEmulatorOptions): Promise<DataFactoryEmulator> {
  const clock = options.clock ?? systemClock;
  const state = new DataFactoryState(clock);
  const runs = new Map<string, PipelineRun>();
  const handle = { state, pageSize: options.pageSize ?? 50, runs } as DataFactoryEmulator;
  const runner: RunnerDeps | undefined = options.identityToken ? { clock, identityToken: options.identityToken, msPerSecond: options.msPerSecond } : undefined;
  const server: EmulatorServer = new EmulatorServer({
    name: 'arm-datafactory',
    tls: options.tls ?? ensureSandboxTls(process.env.KEYWARDEN_CA_DIR ?? TEST_CA_DIR),
    clock,
    handler: createArmHandler({ state, validator: options.validator, baseUrl: () => server.url, pageSize: () => handle.pageSize, runner, runs }),
    faultBody: armFaultBody,
  });
  handle.url = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  handle.server = server;
  handle.close = () => server.close();
  return handle;
}

export { DataFactoryState } from './state.js';
export { ADF_API_VERSION } from './arm.js';
