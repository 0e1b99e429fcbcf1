import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { AdjustableClock, DAY_MS, HOUR_MS, type Clock } from '../clock.js';
import { configSchema, type KeywardenConfig } from '../config/schema.js';
import type { Logger } from '../logging/logger.js';
import { startConnectorEmulator } from './connector/emulator.js';
import { registerSecret } from '../logging/redact.js';
import { startSandboxClouds, withSandboxConfig, type SandboxClouds } from './estate.js';
import { startKeyVaultEmulator } from './keyvault/emulator.js';
import { ADF_API_VERSION } from './datafactory/index.js';
import { JIT_FACTORY, JIT_PIPELINE } from './datafactory/jit-pipeline.js';
import { SANDBOX_RESOURCE_GROUP, SANDBOX_SUBSCRIPTION_ID } from './datafactory/seed.js';
import { PLAYGROUND_USERS, startPlayground, type PlaygroundHandle } from './playground.js';
import { ensureSandboxTls, type SandboxTls } from './tls.js';

/**
 * `npm start` without configuration: the emulated clouds with the seeded estate, a Bot Connector emulator, the
 * Agents Playground as the chat client, and a small control endpoint to move the sandbox clock.
 */

export const SANDBOX_BOT_ID = '00000000-0000-4000-8000-00000000b07d';
const AUDIT_VAULT = 'kv-keywarden';
const AUDIT_KEY_SECRET = 'keywarden-audit-key';

export interface SandboxEnvironment {
  config: KeywardenConfig;
  close(): Promise<void>;
}

/** The emulated estate is re-seeded on every start, so Keywarden's state about the previous run's estate is dropped. */
function freshStore(dataDir: string): string {
  const path = join(resolve(dataDir), 'keywarden.db');
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  return path;
}

/** A control route beyond the clock (the pipeline runs): answers, or undefined for "not mine". */
type ControlRoute = (method: string, url: string, body: string) => Promise<{ status: number; body: unknown } | undefined>;

function startControl(clock: Clock, info: () => Record<string, unknown>, logger: Logger, extra?: ControlRoute): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, null, 2));
    };
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void (async () => {
      const answer = await extra?.(req.method ?? 'GET', req.url ?? '/', Buffer.concat(chunks).toString()).catch((err: Error) => ({ status: 500, body: { error: err.message } }));
      if (answer) return send(answer.status, answer.body);
      if (req.method === 'GET' && req.url === '/') return send(200, { now: new Date(clock.now()).toISOString(), ...info() });
      if (req.method === 'POST' && req.url === '/clock/advance') {
        let body: { days?: number; hours?: number };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        } catch {
          return send(400, { error: 'send JSON such as {"days": 7} or {"hours": 6}' });
        }
        const ms = (Number(body.days ?? 0) * DAY_MS) + (Number(body.hours ?? 0) * HOUR_MS);
        if (!(clock instanceof AdjustableClock) || !Number.isFinite(ms) || ms <= 0) {
          return send(400, { error: 'send a positive {"days": N} or {"hours": N}; the clock only moves forward' });
        }
        clock.advance(ms);
        logger.warn({ now: new Date(clock.now()).toISOString() }, 'sandbox clock moved forward');
        return send(200, { now: new Date(clock.now()).toISOString() });
      }
      return send(404, { error: 'use GET /, POST /clock/advance {"days": N}, POST /pipelines/run or GET /pipelines/runs/<runId>' });
    })());
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolvePromise({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

/**
 * POST /pipelines/run starts docs/adf/keywarden-jit-pipeline.json in the emulated factory adf-analytics (over ARM
 * createRun, as `az datafactory pipeline create-run` would); GET /pipelines/runs/<id> shows the run and its activities.
 */
function pipelineControl(clouds: SandboxClouds, config: KeywardenConfig): ControlRoute {
  const factory = `${clouds.urls.arm}/subscriptions/${SANDBOX_SUBSCRIPTION_ID}/resourceGroups/${SANDBOX_RESOURCE_GROUP}/providers/Microsoft.DataFactory/factories/${JIT_FACTORY}`;
  const arm = async (method: string, path: string, body?: unknown) => {
    const token = clouds.handles.entra.issueToken(clouds.seeds.entra.keywarden.clientId, 'https://management.azure.com/');
    const res = await fetch(`${factory}${path}?api-version=${ADF_API_VERSION}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };
  return async (method, url, text) => {
    if (method === 'POST' && url === '/pipelines/run') {
      const given = text.trim() ? JSON.parse(text) as Record<string, unknown> : {};
      const parameters = {
        keywardenUrl: `http://127.0.0.1:${config.server.port}`, workspaceUrl: clouds.urls.workspaces['ws-prod'], vaultUrl: `${clouds.urls.vaults['kv-prod']}/`, ...given,
      };
      const created = await arm('POST', `/pipelines/${JIT_PIPELINE}/createRun`, parameters);
      return { status: created.status, body: { ...created.body, pipeline: JIT_PIPELINE, factory: JIT_FACTORY, statusUrl: `/pipelines/runs/${String(created.body.runId)}` } };
    }
    const m = /^\/pipelines\/runs\/([0-9a-f-]{36})$/.exec(url);
    if (method === 'GET' && m) {
      const run = await arm('GET', `/pipelineruns/${m[1]}`);
      const activities = await arm('POST', `/pipelineruns/${m[1]}/queryActivityruns`, {});
      return { status: run.status, body: { ...run.body, activities: (activities.body.value as Array<Record<string, unknown>> | undefined)?.map((a) => ({ name: a.activityName, status: a.status, error: a.error })) } };
    }
    return undefined;
  };
}

export async function startSandboxEnvironment(context: { config: KeywardenConfig; logger: Logger; clock: Clock; env?: NodeJS.ProcessEnv }): Promise<SandboxEnvironment> {
  const { logger, clock } = context;
  const env = context.env ?? process.env;
  const dataDir = context.config.sandbox.dataDir;
  const tls = ensureSandboxTls(dataDir);
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const clouds = await startSandboxClouds({ clock, tls });
    closers.push(() => clouds.close());
    const connector = await startConnectorEmulator({ clock });
    closers.push(() => connector.close());

    const auditVault = await startAuditVault(clouds, clock, tls);
    closers.push(() => auditVault.close());

    const base = { ...(context.config as unknown as Record<string, unknown>) };
    const merged = withSandboxConfig(base, clouds.config);
    const config = configSchema.parse({
      ...merged,
      audit: { ...(context.config.audit), ...auditVault.config },
      store: { path: context.config.store.path === './data/keywarden.db' ? freshStore(dataDir) : context.config.store.path },
    });

    let playground: PlaygroundHandle | undefined;
    const wantPlayground = config.sandbox.playground && env.KEYWARDEN_SANDBOX_PLAYGROUND !== '0' && config.server.port !== 0;
    // KEYWARDEN_SANDBOX_USER picks who sits at the Playground (e.g. "Megan Bowen" to approve Alex's /jit request).
    const wanted = env.KEYWARDEN_SANDBOX_USER?.trim().toLowerCase();
    const userIndex = wanted ? PLAYGROUND_USERS.findIndex((u) => u.name.toLowerCase() === wanted || u.given.toLowerCase() === wanted) : 0;
    if (wanted && userIndex < 0) {
      logger.warn({ KEYWARDEN_SANDBOX_USER: env.KEYWARDEN_SANDBOX_USER, people: PLAYGROUND_USERS.map((u) => u.name) },
        'KEYWARDEN_SANDBOX_USER names nobody in the sandbox; use one of the listed people — starting as Alex Wilber');
    }
    const me = PLAYGROUND_USERS[Math.max(0, userIndex)]!;
    if (wantPlayground) {
      try {
        playground = await startPlayground({
          botEndpoint: `http://127.0.0.1:${config.server.port}/api/messages`, botId: SANDBOX_BOT_ID,
          port: config.sandbox.playgroundPort, dataDir, currentUser: Math.max(0, userIndex),
        });
        const pg = playground;
        closers.push(() => pg.close());
      } catch (err) {
        logger.warn({ err }, 'the Agents Playground did not start; the bot still answers the Bot Framework protocol');
      }
    }

    const urls = {
      bot: `http://127.0.0.1:${config.server.port}/api/messages`,
      playground: playground?.url,
      botConnector: connector.url,
      entraAuthority: clouds.urls.authorityHost,
      graph: clouds.urls.graph,
      dataFactory: clouds.urls.arm,
      workspaces: clouds.urls.workspaces,
      vaults: clouds.urls.vaults,
    };
    const control = await startControl(clock, () => ({ urls, approvers: PLAYGROUND_USERS.slice(0, 2).map((u) => u.name) }), logger, pipelineControl(clouds, config));
    closers.push(() => control.close());

    const lines = [
      '',
      '══════════ Keywarden SANDBOX — emulated clouds, nothing real is touched ══════════',
      ...playgroundLines(playground?.url, config.sandbox.playgroundPort),
      `  Bot endpoint:                    ${urls.bot}`,
      `  Bot Connector emulator:          ${connector.url}`,
      `  Entra token endpoint:            ${clouds.urls.authorityHost}`,
      `  Microsoft Graph:                 ${clouds.urls.graph}`,
      `  Data Factory (ARM):              ${clouds.urls.arm}`,
      ...Object.entries(clouds.urls.workspaces).map(([n, u]) => `  Databricks ${n.padEnd(21)}${u}`),
      ...Object.entries(clouds.urls.vaults).map(([n, u]) => `  Key Vault ${n.padEnd(22)}${u}`),
      `  Audit key + anchors (Key Vault): ${auditVault.url}`,
      `  Sandbox control:                 ${control.url}  (POST /clock/advance {"days": 7})`,
      `  Pipeline JIT demo:               curl -X POST ${control.url}/pipelines/run  (Data Factory asks Keywarden over POST /api/jit)`,
      `  You are ${me.name} (${PLAYGROUND_USERS.indexOf(me) < 2 ? 'an approver' : 'not an approver'}; KEYWARDEN_SANDBOX_USER="Megan Bowen" switches). Open the`,
      `  Playground URL above, pick "Platform Team › Platform Support" to install`,
      `  Keywarden there: warnings arrive in that channel. Try "/expiring 14d" in the chat.`,
      '════════════════════════════════════════════════════════════════════════════════════',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
    logger.info({ urls: { ...urls, control: control.url } }, 'sandbox ready');
    return { config, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The vault holding the audit chain's HMAC key and anchors: its own emulated vault, so the estate's vaults (and
 * so the scan) are unchanged. The key is random per start, like the fresh store it keys.
 */
async function startAuditVault(clouds: SandboxClouds, clock: Clock, tls: SandboxTls) {
  const emulator = await startKeyVaultEmulator({
    tls, tenantId: clouds.tenantId, clock, tokenValidator: clouds.handles.entra.validator,
    authorityHost: clouds.urls.authorityHost, vaults: [{ name: AUDIT_VAULT }],
  });
  const key = randomBytes(48).toString('base64url');
  registerSecret(key);
  emulator.vault(AUDIT_VAULT).seedSecret(AUDIT_KEY_SECRET, { value: key, contentType: 'text/plain' });
  const url = emulator.urls()[AUDIT_VAULT]!;
  return {
    url,
    config: { keySecret: { vault: url, name: AUDIT_KEY_SECRET }, anchorSecret: { vault: url, name: 'keywarden-audit-anchor' } },
    close: () => emulator.close(),
  };
}

/** The banner's Playground lines: the URL to open is the one the Playground really got (it moves off a taken port). */
export function playgroundLines(url: string | undefined, wantedPort: number): string[] {
  if (!url) return ['  Agents Playground (chat client):  not started — see the log line above; the bot still answers the protocol'];
  const moved = new URL(url).port !== String(wantedPort);
  return [
    `  OPEN THIS → Agents Playground:    ${url}  (the chat client)`,
    ...(moved ? [`               (port ${wantedPort} was taken, so the Playground took this one)`] : []),
  ];
}

/** The sandbox clock: real time plus whatever the control endpoint or tests add. */
export function sandboxClock(): AdjustableClock {
  return new AdjustableClock();
}
