import { createServer } from 'node:net';

/** The bot's port is taken (or not ours to take): the user's to fix, so main prints one line and exits 2. */
export class PortUnavailableError extends Error {
  override readonly name = 'PortUnavailableError';
  constructor(readonly port: number, readonly host: string, readonly code: 'PORT_IN_USE' | 'PORT_NOT_ALLOWED') {
    super(code === 'PORT_IN_USE'
      ? `port ${port} on ${host} is already in use (another Keywarden?) — stop what is listening there, or pick a free port with PORT=<n> or server.port in the config`
      : `port ${port} on ${host} needs privileges this process does not have — use a port above 1024 with PORT=<n> or server.port in the config`);
  }
}

/** Turns a listen error into PortUnavailableError when it is about the port; anything else is returned as is. */
export function portError(err: unknown, port: number, host: string): unknown {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'EADDRINUSE') return new PortUnavailableError(port, host, 'PORT_IN_USE');
  if (code === 'EACCES') return new PortUnavailableError(port, host, 'PORT_NOT_ALLOWED');
  return err;
}

/** Checks the port before anything starts (the sandbox, the store), so a taken port costs one line, not a stack. */
export function assertPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) => reject(portError(err, port, host)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}
