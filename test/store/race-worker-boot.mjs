// Worker-thread entry: load TypeScript through tsx, then run the real race worker.
import { register } from 'tsx/esm/api';

register();
await import('./race-worker.ts');
