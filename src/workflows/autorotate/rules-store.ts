/**
 * Auto-rotation rules in the `approvals` collection: names (R1, R2… unique), versions (a change of R1 is stored as
 * R1v2 and replaces R1 only once approved), proposals (stored and audited before any card shows them) and state
 * changes by compare-and-set, so a double click or a second replica never changes a rule twice.
 */
import { randomBytes } from 'node:crypto';
import {
  AUTO_ROTATION_PREFIX, autoRunKey, listAutoRotationRules, readAutoRotationRule, ruleIdOf, selectorText, type AutoRotationRule, type AutoRotationRun,
} from '../../approvals/auto-rotation.js';
import { autoRotationRuleId, type StandingChatState } from '../../approvals/standing.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import type { JobActor } from '../../domain/job.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { Store } from '../../store/store.js';
import { parametersOf, proposeRule, type ProposedRule, type RuleCoverage, type RuleParameters } from './rule-plan.js';

export const newRuleNonce = (): string => randomBytes(12).toString('base64url');

const NAME = /^R(\d{1,6})$/i;

/** The states in which a rule name is "taken" by a version people act on (not a dead proposal). */
const LIVE: ReadonlyArray<AutoRotationRule['state']> = ['active', 'paused', 'expired'];

/** The version of a rule people mean by its name: the one in force (or paused / lapsed), else the newest. */
export function ruleNamed(store: Store, name: string): AutoRotationRule | undefined {
  const versions = listAutoRotationRules(store).filter((r) => r.template.ruleName.toLowerCase() === name.toLowerCase());
  return versions.find((r) => LIVE.includes(r.state)) ?? versions.sort((a, b) => b.declaredAt - a.declaredAt)[0];
}

/** A rule by the name people use (R1: the version in force), else by a version id (R1v2). */
export function findRule(store: Store, idOrName: string): AutoRotationRule | undefined {
  return ruleNamed(store, idOrName) ?? readAutoRotationRule(store, idOrName);
}

function nextName(rules: AutoRotationRule[]): string {
  const max = rules.reduce((m, r) => Math.max(m, Number(NAME.exec(r.template.ruleName)?.[1] ?? 0)), 0);
  return `R${max + 1}`;
}

/** R1 for the first version, R1v2, R1v3… for later ones. */
function versionId(store: Store, name: string): string {
  if (!store.get('approvals', autoRotationRuleId(name))) return name;
  for (let v = 2; ; v++) if (!store.get('approvals', autoRotationRuleId(`${name}v${v}`))) return `${name}v${v}`;
}

const sameParameters = (a: RuleParameters, b: RuleParameters) => canonicalJson(a) === canonicalJson(b);

export type Proposal =
  | { kind: 'proposed'; proposed: ProposedRule; replaces?: AutoRotationRule }
  /** The same proposal is already waiting for approvers: its card again, nothing new stored. */
  | { kind: 'waiting'; rule: AutoRotationRule; replaces?: AutoRotationRule }
  /** The rule in force already says exactly this. */
  | { kind: 'unchanged'; rule: AutoRotationRule };

/**
 * Stores a pending rule (audited as rule.proposed) before anyone sees its card. `changes` is the rule this one widens,
 * narrows or renews: it keeps its name, and stays in force until the new version is approved.
 */
export function storeProposal(input: {
  store: Store;
  config: KeywardenConfig;
  parameters: RuleParameters;
  /** What the selector covers in the latest scan (every credential: approvers approve their facts). */
  coverage: RuleCoverage;
  requestedBy: JobActor;
  conversation: StandingChatState['conversation'];
  changes?: AutoRotationRule;
  renewal?: boolean;
  now: number;
}): Proposal {
  const { store, parameters, changes } = input;
  return store.transaction((): Proposal => {
    const rules = listAutoRotationRules(store);
    const waiting = rules.find((r) => r.state === 'pending' && r.chat?.replaces === changes?.id && sameParameters(parametersOf(r), parameters));
    if (waiting) return { kind: 'waiting', rule: waiting, replaces: changes };
    if (changes && !input.renewal && changes.state === 'active' && sameParameters(parametersOf(changes), parameters)) return { kind: 'unchanged', rule: changes };
    const ruleName = changes?.template.ruleName ?? nextName(rules);
    const ruleId = versionId(store, ruleName);
    const proposed = proposeRule({
      ruleId, ruleName, parameters, coverage: input.coverage, config: input.config, requestedBy: input.requestedBy,
      conversation: input.conversation, nonce: newRuleNonce(), replaces: changes?.id, now: input.now,
    });
    if (!store.insert('approvals', proposed.rule.id, proposed.rule)) throw new Error(`rule ${ruleId} was created by someone else at the same moment; try again`);
    store.appendAudit({
      action: 'rule.proposed', actor: input.requestedBy, subject: proposed.rule.id, result: 'info',
      details: {
        ...ruleDetails(proposed.rule), lifetimeDays: proposed.rule.template.lifetimeDays, graceHours: proposed.rule.template.graceHours,
        required: proposed.rule.chat?.required, covered: proposed.coverage.covered.map((c) => c.credential.id).slice(0, 50),
        coveredCount: proposed.coverage.covered.length, ...(changes ? { replaces: changes.id, renewal: Boolean(input.renewal) } : {}),
      },
    });
    return { kind: 'proposed', proposed, replaces: changes };
  });
}

/** What every rule audit record says about the rule: ids, hash and selector only. */
export function ruleDetails(rule: AutoRotationRule): Record<string, unknown> {
  return {
    ruleId: ruleIdOf(rule), ruleName: rule.template.ruleName, planHash: rule.planHash, selector: rule.selector,
    selectorText: selectorText(rule.selector), trigger: rule.trigger,
  };
}

/**
 * Changes a rule by compare-and-set: `change` returns the next value, or a reason it may not change (then nothing is
 * written). Retries when someone else wrote in between, re-deciding on what they wrote.
 */
export function changeRule(store: Store, ruleId: string, change: (rule: AutoRotationRule) => AutoRotationRule | string): AutoRotationRule | string {
  for (let attempt = 0; attempt < 10; attempt++) {
    const rec = store.get<AutoRotationRule>('approvals', autoRotationRuleId(ruleId));
    if (!rec || rec.value.kind !== 'auto-rotation') return 'there is no such rule';
    const next = change(rec.value);
    if (typeof next === 'string') return next;
    if (store.compareAndSet('approvals', rec.id, rec.version, next)) return next;
  }
  return 'the rule kept changing while Keywarden tried to change it; look at /rules and try again';
}

/** The run records the execution side keeps for every version of a rule. */
export function runsOf(store: Store, rule: AutoRotationRule): AutoRotationRun[] {
  const versions = listAutoRotationRules(store).filter((r) => r.template.ruleName === rule.template.ruleName);
  return versions.flatMap((v) => store.list<AutoRotationRun>('approvals', { prefix: autoRunKey(ruleIdOf(v), '') }).map((r) => r.value));
}

export { AUTO_ROTATION_PREFIX };
