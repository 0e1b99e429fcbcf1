import type { StoredConversation } from '../app.js';
import type { ChannelConfig } from '../config/schema.js';
import { verifyClientSecret } from '../providers/entra/verify.js';
import { callSignal, checkMaker, type DoctorContext } from './context.js';
import { REINSTALL_APP, STANDARD_CHANNEL } from './fixes.js';
import type { DoctorCheck } from './types.js';

/** Teams: Bot Framework credentials (production), and each support channel's stored conversation reference. */

const BOT_FRAMEWORK_SCOPE = 'https://api.botframework.com/.default';
/** Entra's answers that mean "this secret will never work", as opposed to replication delays or network trouble. */
const FINAL_AADSTS = new Set(['AADSTS7000215', 'AADSTS7000222', 'AADSTS700016', 'AADSTS90002']);

/** Names people give private/shared channels; the Bot Framework reference itself does not say. */
const PRIVATE_LOOKING = /(^|[^a-z])(private|priv|confidential|restricted|shared)([^a-z]|$)/i;

async function botCredentials(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const make = checkMaker('teams', 'bot');
  const { bot, mode } = ctx.config;
  if (mode !== 'production') {
    return [make('bot-credentials', 'Bot Framework credentials', { status: 'info', required: false, detail: 'sandbox mode: inbound requests are not JWT-validated — for local use only; production requires bot.appId, bot.appPassword and bot.tenantId' })];
  }
  const present = make('bot-credentials', 'Bot Framework credentials present (production)', {
    status: 'pass', required: true, detail: `appId ${bot.appId}, tenant ${bot.tenantId}, appType ${bot.appType}${bot.appType === 'UserAssignedMSI' ? ' (no password: managed identity)' : ', password set'}`,
  });
  if (bot.appType === 'UserAssignedMSI' || !bot.appPassword || !bot.appId || !bot.tenantId) return [present];
  const result = await verifyClientSecret({
    tenantId: bot.appType === 'MultiTenant' ? 'botframework.com' : bot.tenantId, clientId: bot.appId, secret: bot.appPassword,
    authorityHost: ctx.config.azure.authorityHost, scope: BOT_FRAMEWORK_SCOPE, signal: callSignal(ctx),
  }).catch((err: unknown) => ({ ok: false as const, reason: `could not reach Entra: ${(err as Error).message}`, transient: true, code: undefined }));
  if (result.ok) return [present, make('bot-token', 'the bot password gets a Bot Framework token', { status: 'pass', required: true })];
  const final = result.code !== undefined && FINAL_AADSTS.has(result.code);
  return [present, make('bot-token', 'the bot password gets a Bot Framework token', {
    status: final ? 'fail' : 'warn', required: true, detail: result.reason,
    missing: final ? 'a valid client secret for the Azure Bot\'s app registration' : undefined,
    fix: final ? [
      `Entra admin center → App registrations → ${bot.appId} → Certificates & secrets → New client secret; put it in MicrosoftAppPassword (bot.appPassword: env:MicrosoftAppPassword).`,
    ] : undefined,
  })];
}

function channelCheck(ctx: DoctorContext, channel: ChannelConfig): DoctorCheck[] {
  const make = checkMaker('teams', channel.name);
  const out: DoctorCheck[] = [];
  const title = 'conversation reference alive (app installed in the team)';
  const key = channel.conversationId.replace(/;messageid=.*$/, '');
  const record = ctx.store?.get<StoredConversation>('conversations', key)?.value;
  if (!ctx.store) {
    out.push(make('channel', title, { status: 'warn', required: true, detail: `no store at ${ctx.config.store.path} yet: Keywarden has not run, so no installation was recorded`, fix: ['Start Keywarden, then add the app to the team (docs/deploy.md §4).'] }));
  } else if (!record) {
    out.push(make('channel', title, { status: 'warn', required: true, detail: `no installation recorded for ${key}`, missing: 'the Keywarden app installed in this channel\'s team', fix: REINSTALL_APP }));
  } else if (record.status === 'active') {
    out.push(make('channel', title, { status: 'pass', required: true, detail: `installed${record.target.teamName ? ` in team ${record.target.teamName}` : ''}` }));
  } else {
    out.push(make('channel', title, {
      status: 'fail', required: true, detail: record.status === 'dead' ? `reference is dead (${record.deadReason ?? 'Teams refused delivery'})` : 'the app was removed from the team',
      missing: 'the Keywarden app installed in this channel\'s team', fix: REINSTALL_APP,
    }));
  }
  const shown = [channel.name, record?.target.channelName ?? ''].join(' ');
  const flagged = (record?.target as { membershipType?: string } | undefined)?.membershipType;
  if ((flagged && flagged !== 'standard') || PRIVATE_LOOKING.test(shown)) {
    out.push(make('standard-channel', 'standard channel (bots cannot post in private/shared channels)', {
      status: 'warn', required: false, detail: flagged ? `Teams reports a ${flagged} channel` : `the name "${shown.trim()}" looks like a private or shared channel`, fix: STANDARD_CHANNEL,
    }));
  }
  return out;
}

/** Without teams.channels, the channels Keywarden was installed in are the support channels. */
function installedChannels(ctx: DoctorContext): DoctorCheck[] {
  const make = checkMaker('teams', 'installations');
  const all = ctx.store?.list<StoredConversation>('conversations').map((r) => r.value).filter((c) => c.target.kind === 'channel') ?? [];
  const active = all.filter((c) => c.status === 'active');
  const dead = all.filter((c) => c.status === 'dead');
  const out: DoctorCheck[] = [];
  out.push(active.length > 0
    ? make('channel', 'installed in at least one team (support channel)', { status: 'pass', required: true, detail: `${active.length} channel(s): ${active.map((c) => c.target.channelName ?? c.target.conversationId).join(', ')}` })
    : make('channel', 'installed in at least one team (support channel)', { status: 'warn', required: true, detail: ctx.store ? 'no team installation recorded yet' : 'Keywarden has not run yet (no store)', fix: ['Upload the app package and add it to the team that owns your support channel (docs/deploy.md §4).'] }));
  for (const c of dead) {
    out.push(make('dead-channel', `conversation reference ${c.target.channelName ?? c.target.conversationId}`, { status: 'warn', required: false, detail: `dead (${c.deadReason ?? 'Teams refused delivery'})`, fix: REINSTALL_APP }));
  }
  return out;
}

export async function checkTeams(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const channels = ctx.config.teams.channels;
  return [...await botCredentials(ctx), ...(channels.length ? channels.flatMap((c) => channelCheck(ctx, c)) : installedChannels(ctx))];
}
