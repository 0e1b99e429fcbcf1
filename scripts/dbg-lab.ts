import { openLab } from '../test/proof/fixtures/crash-lab.js';
import { startSandboxClouds } from '../src/sandbox/estate.js';
import { systemClock } from '../src/clock.js';
const lab0 = await openLab(); await lab0.close();
let c0 = process.cpuUsage();
for (let i = 0; i < 10; i++) { const lab = await openLab(); await lab.close(); }
let c = process.cpuUsage(c0);
console.log('10 labs', (c.user + c.system) / 1000, 'ms cpu');
c0 = process.cpuUsage();
for (let i = 0; i < 10; i++) { const cl = await startSandboxClouds({ clock: systemClock }); await cl.close(); }
c = process.cpuUsage(c0);
console.log('10 sandboxes', (c.user + c.system) / 1000, 'ms cpu');
