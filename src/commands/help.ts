import { renderCard } from '../cards/render.js';
import type { ChatCommand, Reply } from '../domain/chat.js';

/** `/help [command]`: a card listing every registered command with its usage, description and example. */

export interface HelpCommandOptions {
  botName: string;
  /** Read at answer time, so commands registered after help still show up. */
  commands: () => readonly ChatCommand[];
}

export function helpCommand(options: HelpCommandOptions): ChatCommand {
  return {
    name: 'help',
    usage: '/help [command]',
    description: 'Lists the commands I understand, or explains one of them.',
    example: '/help expiring',
    async handle(args): Promise<Reply> {
      const all = options.commands();
      const wanted = args.trim().replace(/^\//, '').toLowerCase();
      const one = wanted ? all.filter((c) => c.name.toLowerCase() === wanted) : [];
      const shown = one.length > 0 ? one : all;
      const card = renderCard('help', {
        title: one.length > 0 ? `/${one[0]!.name}` : `${options.botName} commands`,
        hint: wanted && one.length === 0
          ? `There is no /${wanted} command; here is everything I understand.`
          : `In a channel, mention me first, e.g. @${options.botName} /help`,
        commands: shown.map((c) => ({ usage: c.usage, description: c.description, details: c.details ?? '', example: c.example ?? '' })),
      });
      return { kind: 'card', card };
    },
  };
}
