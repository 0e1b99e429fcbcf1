/**
 * The people who may act on alert cards, as Teams addresses them. A card's `refresh.userIds` must be Teams user MRIs
 * ("29:…"), while approvers and responders are configured by Entra object id; the only trustworthy pairing of the
 * two is an inbound activity (`from.id` + `from.aadObjectId`). So every card click — including the refresh invokes
 * themselves — records its clicker here (collection `people`, id = Entra object id), and the refresh list is the
 * most recently seen people the directory knows as approvers or responders, at most 60 (Teams' limit).
 */
import type { Clock } from '../clock.js';
import type { CardAction, ChatContext } from '../domain/chat.js';
import type { Store } from '../store/store.js';
import type { ApproverDirectory } from './authorize.js';

export const MAX_REFRESH_USERS = 60;
const MRI = /^29:[A-Za-z0-9._:-]{1,200}$/;

export interface KnownPerson {
  aadObjectId: string;
  /** Teams user id (MRI) as last seen on an activity from this person. */
  userId: string;
  tenantId?: string;
  name: string;
  /** Approver or responder at the last check. */
  mayAct: boolean;
  lastSeenAt: number;
}

/** Records who clicked (MRI ⇄ Entra object id) and whether they may act; never fails the click. */
export async function notePerson(store: Store, directory: Pick<ApproverDirectory, 'mayRespond'>, ctx: ChatContext, now: number): Promise<void> {
  const { aadObjectId, userId, name, tenantId } = ctx.actor;
  if (!aadObjectId || !MRI.test(userId)) return;
  let mayAct = false;
  try {
    mayAct = (await directory.mayRespond(aadObjectId)) === true;
  } catch {
    mayAct = false;
  }
  const person: KnownPerson = { aadObjectId, userId, name: name.slice(0, 128), mayAct, lastSeenAt: now, ...(tenantId ? { tenantId } : {}) };
  const previous = store.get<KnownPerson>('people', aadObjectId)?.value;
  if (previous && previous.userId === person.userId && previous.mayAct === person.mayAct && now - previous.lastSeenAt < 3_600_000) return;
  store.put('people', aadObjectId, person);
}

/** MRIs to put in `refresh.userIds`: approvers and responders Keywarden has seen, most recent first, at most 60. */
export function refreshUserIds(store: Store, directory?: Pick<ApproverDirectory, 'knownResponder'>): string[] {
  return store.list<KnownPerson>('people').map((r) => r.value)
    .filter((p) => p.mayAct || directory?.knownResponder(p.aadObjectId) === true)
    .sort((a, b) => b.lastSeenAt - a.lastSeenAt)
    .slice(0, MAX_REFRESH_USERS)
    .map((p) => p.userId);
}

/** The same verbs, each noting its clicker first (so the next cards refresh for them). */
export function notingClickers(actions: CardAction[], options: { store: Store; clock: Clock; directory: () => Pick<ApproverDirectory, 'mayRespond'> | undefined }): CardAction[] {
  return actions.map((action) => ({
    ...action,
    async handle(data, ctx) {
      const directory = options.directory();
      if (directory && options.store.isOpen) await notePerson(options.store, directory, ctx, options.clock.now()).catch(() => undefined);
      return action.handle(data, ctx);
    },
  }));
}
