import type { Clock } from '../../clock.js';

/** What the emulated Bot Connector remembers: conversations, members and every activity the bot sent. */

export type ActivityOp = 'post' | 'reply' | 'update' | 'delete';

export interface ConnectorMention {
  /** mentioned.id: an MRI or an Entra object id. */
  id: string;
  name?: string;
  text?: string;
}

export interface ConnectorActivity {
  /** Order of arrival across the whole emulator. */
  seq: number;
  /** The conversation without any ";messageid=" suffix (the channel / chat). */
  conversationId: string;
  /** Root post id when the activity is a reply in a channel thread. */
  threadRootId?: string;
  activityId: string;
  /** The replyToId path segment or body field the bot sent (Teams ignores it for threading). */
  replyToId?: string;
  type: string;
  text?: string;
  attachments: Array<{ contentType?: string; content?: unknown }>;
  mentions: ConnectorMention[];
  op: ActivityOp;
  at: number;
  /** Whether the bot was told the id (false in the 202-without-id mode). */
  idReturned: boolean;
  /** The body as the bot sent it. */
  activity: Record<string, unknown>;
}

export interface ConnectorMember {
  id: string;
  name?: string;
  aadObjectId?: string;
  userPrincipalName?: string;
  email?: string;
  tenantId?: string;
  userRole?: string;
}

export interface ConnectorConversation {
  id: string;
  isGroup: boolean;
  tenantId?: string;
  members: ConnectorMember[];
  createdAt: number;
}

/** Splits "19:x@thread.tacv2;messageid=123" into the conversation and the thread root. */
export function splitThreadId(id: string): { conversationId: string; threadRootId?: string } {
  const m = /^(.*?);messageid=([^;]+)$/.exec(id);
  return m ? { conversationId: m[1]!, threadRootId: m[2]! } : { conversationId: id };
}

export class ConnectorState {
  readonly activities: ConnectorActivity[] = [];
  readonly conversations = new Map<string, ConnectorConversation>();
  private lastId = 0;
  private seq = 0;
  private listeners = new Set<() => void>();

  constructor(private readonly clock: Clock) {}

  /** Teams message ids are 13-digit epoch-ms numbers; keep them strictly increasing. */
  nextActivityId(): string {
    this.lastId = Math.max(this.lastId + 1, Math.floor(this.clock.now()));
    return String(this.lastId);
  }

  ensureConversation(id: string, init: Partial<ConnectorConversation> = {}): ConnectorConversation {
    let conv = this.conversations.get(id);
    if (!conv) {
      conv = { id, isGroup: init.isGroup ?? !id.startsWith('a:'), tenantId: init.tenantId, members: init.members ?? [], createdAt: this.clock.now() };
      this.conversations.set(id, conv);
    }
    return conv;
  }

  findActivity(conversationId: string, activityId: string): ConnectorActivity | undefined {
    return this.activities.find((a) => a.conversationId === conversationId && a.activityId === activityId && (a.op === 'post' || a.op === 'reply'));
  }

  isDeleted(conversationId: string, activityId: string): boolean {
    return this.activities.some((a) => a.conversationId === conversationId && a.activityId === activityId && a.op === 'delete');
  }

  record(entry: Omit<ConnectorActivity, 'seq' | 'at'>): ConnectorActivity {
    const full: ConnectorActivity = { ...entry, seq: ++this.seq, at: this.clock.now() };
    this.activities.push(full);
    for (const l of [...this.listeners]) l();
    return full;
  }

  get lastSeq(): number {
    return this.seq;
  }

  onRecord(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  reset(): void {
    this.activities.length = 0;
    this.conversations.clear();
  }
}

/** Mentions the bot attached as `entities: [{type:'mention', mentioned:{id,name}, text}]`. */
export function mentionsOf(activity: Record<string, unknown>): ConnectorMention[] {
  const entities = Array.isArray(activity.entities) ? activity.entities as Array<Record<string, unknown>> : [];
  return entities
    .filter((e) => e && e.type === 'mention' && typeof e.mentioned === 'object' && e.mentioned !== null)
    .map((e) => {
      const m = e.mentioned as { id?: unknown; name?: unknown };
      return { id: String(m.id ?? ''), name: typeof m.name === 'string' ? m.name : undefined, text: typeof e.text === 'string' ? e.text : undefined };
    });
}
