/** The plan an approver would approve for a credential, for the Details view (alerts) and for tests. */
import type { KeywardenConfig } from '../config/schema.js';
import type { AdaptiveCard } from '../domain/chat.js';
import type { Credential } from '../domain/credential.js';
import { renderPlanCard } from './cards.js';
import { planHash, type ActionPlan } from '../domain/plan.js';
import { planRevoke, revokeBlocker } from './revoke/revoke.js';
import { entraRotationBlocker, planEntraRotation } from './rotate/rotate-entra.js';
import { patRotationBlocker, planPatRotation } from './rotate/rotate-pat.js';

export interface CredentialPlan {
  plan: ActionPlan;
  hash: string;
  /** Why the action cannot run for this credential (shown instead of a button). */
  blocker?: string;
}

export function planFor(action: 'rotate' | 'revoke', credential: Credential, config: KeywardenConfig): CredentialPlan {
  if (action === 'revoke') {
    const plan = planRevoke(credential);
    return { plan, hash: planHash(plan), blocker: revokeBlocker(credential) };
  }
  const options = { config, graceHours: config.workflows.graceHours };
  const plan = credential.kind === 'entra-password' ? planEntraRotation(credential, options) : planPatRotation(credential, options);
  const blocker = credential.kind === 'entra-password' ? entraRotationBlocker(credential) : patRotationBlocker(credential);
  return { plan, hash: planHash(plan), blocker };
}

/** The rotation plan as a card (or the revoke plan when the credential cannot be rotated). */
export function planCardFor(credential: Credential, config: KeywardenConfig): AdaptiveCard {
  const rotate = planFor('rotate', credential, config);
  const chosen = rotate.blocker ? planFor('revoke', credential, config) : rotate;
  return renderPlanCard(chosen.plan, chosen.hash);
}
