import type { Credential, EstateError, Finding } from './credential.js';

/** One completed scan across every configured estate. */
export interface ScanResult {
  id: string;
  trigger: 'schedule' | 'start' | 'command' | 'cli';
  startedAt: number;
  finishedAt: number;
  credentials: Credential[];
  /** Policy findings, expiry ones included (code 'expiring' / 'expired'). */
  findings: Finding[];
  errors: EstateError[];
  /** Compared with the previous stored snapshot, by credential id. */
  changes: { added: string[]; removed: string[]; changed: string[] };
}

export type ScanListener = (result: ScanResult) => void | Promise<void>;
