import { z } from 'zod';

/**
 * Config of the standing loops: auto-rotation rules (issue 11) and governance remedies (issue 13).
 * One block per feature so each can grow without touching the others; every key is documented in docs/configuration.md.
 */

const days = z.number().int().positive();

// ── Auto-rotation rules (src/workflows/autorotate/) ─────────────────────────────────────────────────────────────

export const autoRotationSchema = z.object({
  /** Execution (src/workflows/autorotate/fire.ts): a rule covers a credential only with a consumer or recent use. */
  recentUseDays: days.default(30),
  /** Consumers Data Factory correlation cannot see (a REST client, a JDBC job): credential id or name → what uses it. */
  consumers: z.array(z.object({ credential: z.string().min(1), name: z.string().min(1) })).default([]),

  /** A rule must be renewed this many days after its approval (a card reminds the channel before). */
  reviewDays: days.default(180),
  /** When the card button proposes a rule (no arguments to give): fire this many days before each expiry. */
  daysBefore: days.default(14),
}).default({});

// ── Move a pipeline to a service principal (src/workflows/move-to-sp/) ──────────────────────────────────────────

export const moveToSpSchema = z.object({
  /** Per workspace, the service principal a human-owned pipeline token is moved to (an on-behalf-of token for it). */
  servicePrincipals: z.array(z.object({
    workspace: z.string().min(1),
    /** Entra application (client) id: what on-behalf-of token creation and the token ACL name the SP by. */
    applicationId: z.string().min(1),
    /** How plans and messages name it, e.g. "sp-etl". */
    name: z.string().min(1),
  })).default([]),
  /** Lifetime of the new token (capped by the workspace maximum); default workflows.patLifetimeDays. */
  lifetimeDays: days.optional(),
  /** Hours the person's token stays valid after the SP token is verified (Rollback until then); default workflows.graceHours. */
  graceHours: z.number().min(0).optional(),
}).default({});

// ── Workspace token controls: maximum lifetime and who may create tokens (src/workflows/workspace-controls/) ────

const tokenAllowListSchema = z.object({
  /** The configured Databricks workspace this allow-list is for. */
  workspace: z.string().min(1),
  /** Workspace groups that keep CAN_USE on tokens (admins always keep CAN_MANAGE). */
  groups: z.array(z.string().min(1)).default([]),
  /** Service principals that keep CAN_USE, by Entra application (client) id. */
  servicePrincipals: z.array(z.string().min(1)).default([]),
  /** Users that keep CAN_USE, by userName (UPN). */
  users: z.array(z.string().min(1)).default([]),
});

export const workspaceControlsSchema = z.object({
  /** The maximum token lifetime /max-lifetime and the findings' button propose (workspace-conf maxTokenLifetimeDays). */
  maxLifetimeDays: z.number().int().min(1).max(730).default(90),
  /** Per workspace: who may keep creating and using tokens after /restrict-tokens. */
  tokenAllowList: z.array(tokenAllowListSchema).default([]),
}).default({});

// ── Retire unused tokens and revoke on demand (src/workflows/retire/) ───────────────────────────────────────────

export const retireSchema = z.object({
  /** A PAT unused for this many days goes into a batch (tokens not rotated within policy.notRotatedDays go in too). */
  unusedDays: days.default(90),
  /** Days between telling the owners and revoking; a token used meanwhile is dropped from the batch. */
  waitDays: z.number().int().min(0).max(90).default(7),
  /** At most this many tokens per batch (the card lists each one); the rest wait for the next batch. */
  maxBatch: z.number().int().min(1).max(200).default(40),
}).default({});

// ── Governance report (src/governance/) ─────────────────────────────────────────────────────────────────────────

export const reportSchema = z.object({
  /** Post the governance report in the support channels (after install, then every everyDays); /governance always works. */
  enabled: z.boolean().default(true),
  everyDays: days.default(7),
  /** Owners with the most findings shown on the report. */
  topOffenders: z.number().int().min(0).max(20).default(5),
  /** Remedy buttons on one report at most (the rest are named, reachable with the commands). */
  maxButtons: z.number().int().min(0).max(10).default(6),
}).default({});

// ────────────────────────────────────────────────────────────────────────────────────────────────────────────────

export const governanceSchema = z.object({
  moveToServicePrincipal: moveToSpSchema,

  workspaceControls: workspaceControlsSchema,

  retire: retireSchema,

  report: reportSchema,
}).default({});
