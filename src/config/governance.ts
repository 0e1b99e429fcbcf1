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

export const moveToSpSchema = z.object({}).default({});

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
