// Shared with the bench (`npm run bench -- --store tables`).
export { startAzurite, type Azurite } from '../../scripts/azurite.js';
