/**
 * Where a new secret value waits between the provider call that created it and the Key Vault write.
 * Process memory only: never the journal. If the process dies in between, the value is gone and the
 * set step revokes the orphaned credential and creates it again.
 */
import { registerSecret } from '../../logging/redact.js';

export class SecretHandoff {
  private readonly values = new Map<string, string>();

  /** Keeps a value for one job's step; registers it for redaction at once. */
  put(jobId: string, slot: string, value: string): void {
    registerSecret(value);
    this.values.set(`${jobId}/${slot}`, value);
  }

  get(jobId: string, slot: string): string | undefined {
    return this.values.get(`${jobId}/${slot}`);
  }

  /** Forgets a job's values once they are in Key Vault (or the job ended). */
  clear(jobId: string): void {
    for (const key of [...this.values.keys()]) if (key.startsWith(`${jobId}/`)) this.values.delete(key);
  }

  get size(): number {
    return this.values.size;
  }
}
