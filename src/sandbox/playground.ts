import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { PLAYGROUND_USERS as DIRECTORY } from './entra/seed.js';

/**
 * Starts the M365 Agents Playground (headless) as the sandbox's chat client, with mock users whose Entra object ids
 * match the sandbox approvers, and a team with a support channel.
 */

export const PLAYGROUND_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const PLAYGROUND_TEAM = { id: '19:keywarden-platform@thread.tacv2', name: 'Platform Team', aadGroupId: 'bbbbbbbb-0000-4000-8000-0000000000b1' };
export const PLAYGROUND_SUPPORT_CHANNEL = { id: '19:platform-support@thread.tacv2', name: 'Platform Support' };

/** Sandbox people: the first two are approvers (group "Keywarden Approvers"), the rest are not. */
export const PLAYGROUND_USERS = [
  // The first three are the people the emulated Entra directory knows (approvers Alex and Megan, non-approver Lee).
  { id: 'user-id-0', name: 'Alex Wilber', given: 'Alex', surname: 'Wilber', aadObjectId: DIRECTORY.alex.id },
  { id: 'user-id-1', name: 'Megan Bowen', given: 'Megan', surname: 'Bowen', aadObjectId: DIRECTORY.megan.id },
  { id: 'user-id-2', name: 'Lee Gu', given: 'Lee', surname: 'Gu', aadObjectId: DIRECTORY.lee.id },
  { id: 'user-id-3', name: 'Adele Vance', given: 'Adele', surname: 'Vance', aadObjectId: '00000000-0000-0000-0000-0000000000a4' },
  { id: 'user-id-4', name: 'Diego Siciliani', given: 'Diego', surname: 'Siciliani', aadObjectId: '00000000-0000-0000-0000-0000000000a5' },
  { id: 'user-id-5', name: 'Patti Fernandez', given: 'Patti', surname: 'Fernandez', aadObjectId: '00000000-0000-0000-0000-0000000000a6' },
] as const;

export interface PlaygroundOptions {
  botEndpoint: string;
  botId: string;
  port: number;
  dataDir: string;
  /** Index into PLAYGROUND_USERS of the person at the keyboard (default Alex Wilber, an approver). */
  currentUser?: number;
  onLog?: (line: string) => void;
}

export interface PlaygroundHandle {
  url: string;
  serviceUrl: string;
  process: ChildProcess;
  close(): Promise<void>;
}

function yamlUser(u: (typeof PLAYGROUND_USERS)[number], indent: string): string {
  const email = `${u.given.toLowerCase()}${u.surname[0]!.toLowerCase()}@contoso.com`;
  return [`id: ${u.id}`, `name: ${u.name}`, `userPrincipleName: ${email}`, `aadObjectId: ${u.aadObjectId}`,
    `givenName: ${u.given}`, `surname: ${u.surname}`, `email: ${email}`].map((l, i) => (i === 0 ? l : indent + l)).join('\n');
}

export function playgroundConfigYaml(botId: string, currentUser = 0): string {
  const me = PLAYGROUND_USERS[currentUser] ?? PLAYGROUND_USERS[0];
  const others = PLAYGROUND_USERS.filter((u) => u !== me).slice(0, 5);
  return [
    'version: "0.1.1"',
    `tenantId: ${PLAYGROUND_TENANT}`,
    'bot:', `  id: ${botId}`, '  name: Keywarden',
    'currentUser:', `  ${yamlUser(me, '  ')}`,
    'users:', ...others.map((u) => `  - ${yamlUser(u, '    ')}`),
    'personalChat:', '  id: a:keywarden-personal-chat',
    'groupChat:', '  id: 19:keywarden-group-chat@thread.v2', '  name: Keywarden Group Chat',
    'team:', `  id: "${PLAYGROUND_TEAM.id}"`, `  name: ${PLAYGROUND_TEAM.name}`, `  aadGroupId: ${PLAYGROUND_TEAM.aadGroupId}`,
    '  channels:', `    - id: "${PLAYGROUND_SUPPORT_CHANNEL.id}"`, `      name: ${PLAYGROUND_SUPPORT_CHANNEL.name}`,
    '',
  ].join('\n');
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolvePromise, reject) => {
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolvePromise(); });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`the Agents Playground did not open port ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export async function startPlayground(options: PlaygroundOptions): Promise<PlaygroundHandle> {
  const dir = resolve(options.dataDir, 'playground');
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, '.m365agentsplayground.yml');
  writeFileSync(configPath, playgroundConfigYaml(options.botId, options.currentUser));
  const require = createRequire(import.meta.url);
  const cli = require.resolve('@microsoft/m365agentsplayground/cli.js');
  const child = spawn(process.execPath, [cli, '--app-endpoint', options.botEndpoint, '--channel-id', 'msteams',
    '--port', String(options.port), '--disable-telemetry'], {
    cwd: dir,
    env: { ...process.env, TEAMSAPPTESTER_BROWSER: 'none', M365_AGENTS_PLAYGROUND_CONFIG_PATH: configPath,
      M365_AGENTS_PLAYGROUND_LOGFILE: join(dir, 'playground.log'), TEAMSAPPTESTER_LOGFILE: join(dir, 'playground.log') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The Playground falls back to a random port when its port is busy, and says which on stdout.
  let port = options.port;
  let announced: (p: number) => void = () => undefined;
  const listening = new Promise<number>((r) => { announced = r; });
  const onData = (buf: Buffer) => {
    const text = buf.toString();
    const m = /Listening on (\d+)/i.exec(text);
    if (m) announced(Number(m[1]));
    for (const line of text.split('\n')) if (line.trim()) options.onLog?.(line.trim());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const timeoutMs = 45_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    port = await Promise.race([
      listening,
      exited.then(() => { throw new Error('the Agents Playground exited at start; see data/sandbox/playground/playground.log'); }),
      new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`the Agents Playground did not start within ${timeoutMs / 1000} s`)), timeoutMs); }),
    ]);
    await waitForPort(port, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    serviceUrl: `http://localhost:${port}/_connector`,
    process: child,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}
