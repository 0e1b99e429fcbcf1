import { openLab } from '../test/proof/fixtures/crash-lab.js';
const lab0 = await openLab(); await lab0.close();
const c0 = process.cpuUsage();
for (let i = 0; i < 10; i++) { const lab = await openLab(); await lab.close(); }
const c = process.cpuUsage(c0);
console.log('10 labs', (c.user + c.system) / 1000, 'ms cpu');
