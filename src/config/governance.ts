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

export const moveToSpSchema = z.object({}).default({});

// ── Workspace token controls: maximum lifetime and who may create tokens (src/workflows/workspace-controls/) ────

export const workspaceControlsSchema = z.object({}).default({});

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

export const reportSchema = z.object({}).default({});

// ────────────────────────────────────────────────────────────────────────────────────────────────────────────────

export const governanceSchema = z.object({
  moveToServicePrincipal: moveToSpSchema,

  workspaceControls: workspaceControlsSchema,

  retire: retireSchema,

  report: reportSchema,
}).default({});
