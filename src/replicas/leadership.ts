/**
 * Which replica runs the work that must happen once: the scan schedule and scan at start, job resumption and the
 * job timer (grace windows, JIT sweeper, pipeline releases). Every replica serves clicks and commands; their claims go
 * through the store's compare-and-set, so a click at either one executes once.
 */

export type ReplicaRole = 'single' | 'leader' | 'follower';

export interface Leadership {
  readonly role: ReplicaRole;
  isLeader(): boolean;
  /** Told when this replica becomes leader (true) or stops being leader (false). Returns an unsubscribe. */
  onChange(listener: (isLeader: boolean) => void): () => void;
  /** One line for /readyz, e.g. "leader (lease renewed 4 s ago)" or "follower (leader: host-b pid 12)". */
  describe(): string;
}

/** One process on one SQLite file: always the leader. */
export const singleInstance: Leadership = {
  role: 'single',
  isLeader: () => true,
  onChange: () => () => undefined,
  describe: () => 'single instance (SQLite): runs the schedules itself',
};

/** Runs `start` while leader and `stop` when leadership is lost; returns the unsubscribe. */
export function whileLeader(leadership: Leadership, start: () => void, stop: () => void): () => void {
  if (leadership.isLeader()) start();
  return leadership.onChange((leader) => (leader ? start() : stop()));
}
