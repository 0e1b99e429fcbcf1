import { z } from 'zod';

/**
 * Config of the standing loops: auto-rotation rules (issue 11) and governance remedies (issue 13).
 * One block per feature so each can grow without touching the others; every key is documented in docs/configuration.md.
 */

const days = z.number().int().positive();

// ── Auto-rotation rules (src/workflows/autorotate/) ─────────────────────────────────────────────────────────────

export const autoRotationSchema = z.object({
  /** A rule must be renewed this many days after its approval (a card reminds the channel before). */
  reviewDays: days.default(180),
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

export const workspaceControlsSchema = z.object({}).default({});

// ── Retire unused tokens and revoke on demand (src/workflows/retire/) ───────────────────────────────────────────

export const retireSchema = z.object({}).default({});

// ── Governance report (src/governance/) ─────────────────────────────────────────────────────────────────────────

export const reportSchema = z.object({}).default({});

// ────────────────────────────────────────────────────────────────────────────────────────────────────────────────

export const governanceSchema = z.object({
  moveToServicePrincipal: moveToSpSchema,

  workspaceControls: workspaceControlsSchema,

  retire: retireSchema,

  report: reportSchema,
}).default({});
