/**
 * Buttons for the scope findings these remedies fix (no-max-token-lifetime, pat-creation-open), wherever findings are
 * shown to people: each button is a stored remedy offer, so the click carries only `{ offerId, nonce }`.
 */
import { createRemedyOffer } from '../../approvals/remedy-offers.js';
import type { Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Finding } from '../../domain/credential.js';
import type { Store } from '../../store/store.js';
import { REMEDY_VERB } from './actions.js';
import { allowListOf } from './plan-restrict.js';

export interface FindingButton {
  title: string;
  verb: string;
  data: Record<string, unknown>;
}

export function workspaceRemedyButtons(deps: { store: Store; clock: Clock; config: KeywardenConfig }, offeredBy = 'Keywarden (/findings)'): (finding: Finding) => FindingButton[] {
  return (f) => {
    if (f.estate !== 'databricks' || f.credentialId) return [];
    if (f.code === 'no-max-token-lifetime') {
      const days = deps.config.governance.workspaceControls.maxLifetimeDays;
      const offer = createRemedyOffer(deps.store, deps.clock, { remedy: 'max-lifetime', subject: f.scope, scope: f.scope, parameters: { days }, offeredBy: { name: offeredBy } });
      return [{ title: `Enforce a ${days}-day maximum lifetime`, verb: REMEDY_VERB['max-lifetime'], data: { offerId: offer.id, nonce: offer.nonce } }];
    }
    if (f.code === 'pat-creation-open' && allowListOf(deps.config, f.scope)) {
      const offer = createRemedyOffer(deps.store, deps.clock, { remedy: 'restrict-tokens', subject: f.scope, scope: f.scope, parameters: {}, offeredBy: { name: offeredBy } });
      return [{ title: 'Restrict token creation to the allow-list', verb: REMEDY_VERB['restrict-tokens'], data: { offerId: offer.id, nonce: offer.nonce } }];
    }
    return [];
  };
}
