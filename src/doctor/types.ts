/** What `keywarden doctor` reports: one line per check, plus Keywarden's own credentials with days left. */

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip' | 'info';

export type DoctorEstate = 'config' | 'databricks' | 'keyvault' | 'graph' | 'datafactory' | 'teams';

export interface DoctorCheck {
  /** Stable id for machines, e.g. "databricks.token-management" or "keyvault.set". */
  id: string;
  estate: DoctorEstate;
  /** Workspace, vault, factory or channel name; "tenant" for Graph. */
  scope: string;
  /** What was checked, in the operator's words, e.g. "token management: list every token (workspace admin)". */
  title: string;
  status: CheckStatus;
  /** Whether a failure blocks Keywarden (exit code 1); a warning never does. */
  required: boolean;
  /** What was seen (counts, names), never a secret. */
  detail?: string;
  /** On failure/warning: the permission or role that is missing, exactly as deploy.md names it. */
  missing?: string;
  /** On failure/warning: how to grant it, one step per line (portal path and/or CLI). */
  fix?: string[];
}

/** One of Keywarden's own credentials (its app secret/certificate, its Databricks PATs). */
export interface OwnCredentialFinding {
  kind: 'entra-password' | 'entra-certificate' | 'databricks-pat';
  /** e.g. "app keywarden-bot (1111…0003)" or "workspace ws-dev". */
  where: string;
  /** Password/cert display name or PAT comment; never the value. */
  name: string;
  /** Epoch ms; null = never expires. */
  expiresAt: number | null;
  /** Whole days left (negative when expired); null = never expires. */
  daysLeft: number | null;
  /** false when the expiry could not be read at all (then expiresAt/daysLeft say nothing). */
  expiryKnown?: boolean;
  status: CheckStatus;
  note?: string;
}

export interface DoctorReport {
  /** Where the config came from (absolute path), or "sandbox". */
  configSource: string;
  mode: 'sandbox' | 'production';
  /** Keywarden's own identity, as far as it could be learned (never a secret). */
  identity: { credentialType: string; clientId?: string; tenantId?: string };
  checks: DoctorCheck[];
  ownCredentials: OwnCredentialFinding[];
  summary: { passed: number; warnings: number; failed: number; skipped: number };
  /** 0 everything required passes; 1 something required is missing. (2, bad config, never reaches a report.) */
  exitCode: 0 | 1;
}
