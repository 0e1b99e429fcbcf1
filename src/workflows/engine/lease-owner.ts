/**
 * Who holds a job lease, and when a lease may be taken over before it expires. The owner string names the host, the
 * pid, a per-engine nonce and the process space (boot id + pid namespace): a pid means something only inside one
 * pid namespace of one boot. Two containers that share a hostname and a volume have separate pid namespaces, so a
 * pid missing here says nothing about a runner there — that lease is waited out, never taken at once.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** The pid space a process lives in: where "pid N exists" can be asked. */
export interface ProcessIdentity {
  host: string;
  pid: number;
  /**
   * Boot id and pid namespace (Linux), or the platform name where pid namespaces do not exist; undefined when it
   * cannot be told (then no lease of ours is ever taken over early).
   */
  space: string | undefined;
}

export interface LeaseOwner extends ProcessIdentity {
  nonce: string;
}

/** Reads this process's boot id and pid namespace; undefined on Linux when either cannot be read. */
export function processSpace(platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform !== 'linux') return platform; // no pid namespaces: the host name alone names the pid space
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const pidNs = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return boot && pidNs ? `boot:${boot}/pidns:${pidNs}` : undefined;
  } catch {
    return undefined;
  }
}

let self: ProcessIdentity | undefined;

/** This process (read once: the boot and namespace of a running process never change). */
export function thisProcess(): ProcessIdentity {
  self ??= { host: hostname(), pid: process.pid, space: processSpace() };
  return self;
}

/** "host|pid|nonce|space": the first three fields are what older versions wrote. */
export function formatLeaseOwner(identity: ProcessIdentity, nonce: string = randomUUID().slice(0, 8)): string {
  return [identity.host, String(identity.pid), nonce, identity.space ?? ''].join('|');
}

export function parseLeaseOwner(owner: string): LeaseOwner | undefined {
  const [host, pidText, nonce, space] = owner.split('|');
  const pid = Number(pidText);
  if (!host || !Number.isInteger(pid) || pid <= 0) return undefined;
  return { host, pid, nonce: nonce ?? '', space: space || undefined };
}

/** Whether a pid exists in this process's pid namespace (EPERM: it exists, owned by someone else). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The same pid space: same host, and the same boot and pid namespace, both known. */
export function samePidSpace(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.host === b.host && a.space !== undefined && a.space === b.space;
}

/**
 * A lease whose process is provably gone can be taken at once (a crash, not a slow peer): its owner ran in this
 * very pid space and its pid no longer exists. Anything else (another host, another container, an owner written
 * by an older version without a space, this pid) waits for the lease to expire.
 */
export function ownerIsGone(owner: string, me: ProcessIdentity = thisProcess(), exists: (pid: number) => boolean = processExists): boolean {
  const holder = parseLeaseOwner(owner);
  if (!holder || !samePidSpace(holder, me) || holder.pid === me.pid) return false;
  return !exists(holder.pid);
}
