/**
 * Auto-rotation execution as a Keywarden module: subscribes to the scanner (so rules fire in the process that scans),
 * and on the job engine's timer starts runs that waited for their card and reports runs in their card's thread.
 * The rules themselves (approval, /rules, pause/revoke) are the rules side's; this side only reads them.
 */
import type { Keywarden, KeywardenModule } from '../../app.js';
import type { Clock } from '../../clock.js';
import type { KeywardenConfig } from '../../config/schema.js';
import type { ChatGateway } from '../../domain/chat.js';
import type { Logger } from '../../logging/logger.js';
import type { Scanner } from '../../scanner/scanner.js';
import type { Store } from '../../store/store.js';
import type { JobEngine } from '../engine/journal.js';
import type { WorkflowsModule } from '../module.js';
import { AutoRotationAnnouncer } from './escalate.js';
import { AutoRotationFirer } from './fire.js';

export interface AutoRotationRunsOptions {
  config: KeywardenConfig;
  store: Store;
  clock: Clock;
  logger?: Logger;
  engine: JobEngine;
  scanner: Pick<Scanner, 'onScan'>;
  chat: () => ChatGateway | undefined;
  cardWaitMs?: number;
}

export interface AutoRotationRuns {
  readonly firer: AutoRotationFirer;
  readonly announcer: AutoRotationAnnouncer;
  stop(): void;
}

/** Wires the firer to the scanner and both to the engine's timer (also used by the crash-test child). */
export function createAutoRotationRuns(o: AutoRotationRunsOptions): AutoRotationRuns {
  const announcer = new AutoRotationAnnouncer({ store: o.store, clock: o.clock, logger: o.logger, chat: o.chat });
  const firer = new AutoRotationFirer({
    config: o.config, store: o.store, clock: o.clock, logger: o.logger, engine: o.engine, cardWaitMs: o.cardWaitMs,
    onStarted: () => void announcer.tick(),
  });
  const unsubscribe = o.scanner.onScan(async (result) => {
    await firer.onScan(result);
    await announcer.tick();
  });
  // Every pass of the engine's timer (cheap: reads only the run records).
  o.engine.every('auto-rotation', 0, async () => {
    if (!o.store.isOpen) return;
    firer.retryWaiting();
    await announcer.tick();
  });
  return { firer, announcer, stop: unsubscribe };
}

/** The module `productModules()` adds after the workflows module. */
export function autoRotationRunsModuleFor(k: Keywarden, built: { scanner?: Scanner; workflows?: WorkflowsModule }): KeywardenModule & { runs: AutoRotationRuns } {
  if (!built.scanner || !built.workflows) throw new Error('auto-rotation runs need the scanner and workflows modules registered before them');
  let chat: ChatGateway | undefined = k.chat;
  const runs = createAutoRotationRuns({
    config: k.config, store: k.store, clock: k.clock, logger: k.logger.child({ component: 'auto-rotation' }),
    engine: built.workflows.engine, scanner: built.scanner, chat: () => chat,
  });
  return {
    name: 'auto-rotation-runs',
    runs,
    attachChat(g) {
      chat = g;
    },
    stop() {
      runs.stop();
    },
  };
}
