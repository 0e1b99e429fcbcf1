import { ActivityTypes, type Activity, type InvokeResponse, type TurnContext } from 'botbuilder';
import { TeamsAdapter } from '@microsoft/teams-ai';
import { ClaimsIdentity } from 'botframework-connector';
import type { JWTPayload } from 'jose';
import type { KeywardenConfig } from '../src/config/schema.js';
import type { Logger } from '../src/logging/logger.js';
import { registerSecret } from '../src/logging/redact.js';
import { incidentId } from './messages.js';

/**
 * The TeamsAdapter, built from config. With a Bot Framework app id the adapter validates every inbound JWT
 * and signs outbound calls; anonymous mode (no app id) exists only for the sandbox and tests.
 */

export class BotAuthError extends Error {
  override readonly name = 'BotAuthError';
  readonly code = 'bot-credentials-missing';
  readonly statusCode = undefined;
}

/**
 * TeamsAdapter whose inbound entry point leaves HTTP to us: `process()` console.errors failures (bypassing
 * our redacting logger) and answers malformed bodies with 500, so the server calls `processInbound` instead.
 */
export class KeywardenTeamsAdapter extends TeamsAdapter {
  /** Authenticates the request (JWT unless anonymous) and runs the turn; throws AuthenticationError (401) as is. */
  processInbound(authHeader: string, activity: Activity, logic: (context: TurnContext) => Promise<void>): Promise<InvokeResponse | undefined> {
    return this.processActivity(authHeader, activity, logic);
  }

  /**
   * Runs the turn for a request whose Bot Connector token bot/auth/ already verified. The adapter trusts these claims
   * instead of validating again: botbuilder's own key fetch has no timeout and fails a turn on a failed refresh.
   */
  processVerified(claims: JWTPayload, activity: Activity, logic: (context: TurnContext) => Promise<void>): Promise<InvokeResponse | undefined> {
    const claimsIdentity = new ClaimsIdentity(
      Object.entries(claims).map(([type, value]) => ({ type, value: typeof value === 'string' ? value : JSON.stringify(value) })),
      true,
    );
    return this.processActivity({
      claimsIdentity,
      audience: BOT_FRAMEWORK_SCOPE,
      callerId: PUBLIC_AZURE_CALLER_ID,
      connectorFactory: this.botFrameworkAuthentication.createConnectorFactory(claimsIdentity),
    }, activity, logic);
  }
}

/** What botbuilder's channel authentication returns for Teams in the public cloud (AuthenticationConstants, CallerIdConstants). */
const BOT_FRAMEWORK_SCOPE = 'https://api.botframework.com';
const PUBLIC_AZURE_CALLER_ID = 'urn:botframework:azure';

export interface TeamsAdapterSetup {
  adapter: KeywardenTeamsAdapter;
  /** '' when anonymous. */
  botAppId: string;
  authenticated: boolean;
}

export function createTeamsAdapter(options: { config: KeywardenConfig; logger: Logger }): TeamsAdapterSetup {
  const { config } = options;
  const log = options.logger.child({ component: 'bot-adapter' });
  const bot = config.bot;
  const appId = bot.appId?.trim() ?? '';

  if (!appId) {
    if (config.mode === 'production') {
      throw new BotAuthError('production mode needs Bot Framework credentials: set bot.appId (and bot.appPassword, or bot.appType: UserAssignedMSI) and bot.tenantId — Keywarden never runs anonymous in production');
    }
    log.warn('*** ANONYMOUS BOT: no bot.appId configured, so inbound requests are NOT authenticated and anyone who can reach /api/messages can act as any user. This is for the sandbox and tests only. ***');
  } else {
    if (bot.appType !== 'UserAssignedMSI' && !bot.appPassword) {
      throw new BotAuthError(`bot.appPassword is required for appType ${bot.appType} — set it (e.g. bot.appPassword: env:MICROSOFT_APP_PASSWORD) or use appType: UserAssignedMSI`);
    }
    if (bot.appType !== 'MultiTenant' && !bot.tenantId) {
      throw new BotAuthError(`bot.tenantId is required for appType ${bot.appType} — set it to your Entra tenant id`);
    }
  }
  if (bot.appPassword) registerSecret(bot.appPassword);

  const adapter = appId
    ? new KeywardenTeamsAdapter({
      MicrosoftAppId: appId,
      MicrosoftAppPassword: bot.appType === 'UserAssignedMSI' ? undefined : bot.appPassword,
      MicrosoftAppType: bot.appType,
      MicrosoftAppTenantId: bot.tenantId,
    })
    : new KeywardenTeamsAdapter({});

  // Last-resort handler: log (the logger redacts), answer briefly, and never throw back into the adapter.
  adapter.onTurnError = async (context: TurnContext, error: Error) => {
    const incident = incidentId();
    const a = context.activity;
    log.error({ err: error, incident, activityType: a?.type, conversationId: a?.conversation?.id }, 'turn failed');
    try {
      if (a?.type === ActivityTypes.Invoke) {
        await context.sendActivity({
          type: ActivityTypes.InvokeResponse,
          value: { status: 200, body: { statusCode: 500, type: 'application/vnd.microsoft.error', value: { code: 'InternalServerError', message: `Keywarden failed to handle this (reference ${incident}).` } } },
        });
      } else if (a?.type === ActivityTypes.Message) {
        await context.sendActivity(`Sorry — something went wrong on my side (reference ${incident}). Please try again; if it keeps happening, ask an admin to check the Keywarden log.`);
      }
    } catch (replyError) {
      log.warn({ err: replyError, incident }, 'could not send the apology either');
    }
  };

  return { adapter, botAppId: appId, authenticated: Boolean(appId) };
}
