// Flat config: typescript-eslint's recommended rules (no type-aware rules, so lint stays fast),
// plus the one architectural rule: only bot/ may import the Bot Framework / Teams AI libraries.
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export const teamsImportRule = [
  'error',
  {
    patterns: [
      {
        group: ['botbuilder', 'botbuilder-*', 'botbuilder/*', 'botframework-*', '@microsoft/teams-ai', '@microsoft/teams-ai/*'],
        message: 'Only bot/ may import botbuilder or @microsoft/teams-ai; use the ChatGateway port (src/domain/chat.ts) instead.',
      },
    ],
  },
];

export default defineConfig(
  globalIgnores([
    'node_modules/', 'dist/', 'coverage/', 'data/', 'devTools/', 'appPackage/', 'cards/',
    '.*', '.*/', // scratch files and tool folders (.test-ca/, .ci/)
  ]),
  {
    files: ['bot/**/*.{ts,mts,js,mjs}', 'src/**/*.{ts,mts,js,mjs}', 'test/**/*.{ts,mts,js,mjs}', 'scripts/**/*.{ts,mts,js,mjs}', 'bin/*.mjs', '*.{ts,js,mjs}'],
    extends: [tseslint.configs.recommended],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      // A few of ESLint's own recommended rules (@eslint/js is not installed; TypeScript covers no-undef & co.).
      'no-debugger': 'error',
      'no-dupe-keys': 'error',
      'no-duplicate-case': 'error',
      'no-unreachable': 'error',
      'no-unsafe-finally': 'error',
      'no-fallthrough': 'error',
      'no-self-assign': 'error',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-restricted-imports': teamsImportRule,
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `any` at protocol edges (SDK payloads) is sometimes the honest type: flag it, don't block.
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  {
    // The Teams edge is the one place the Bot Framework libraries belong.
    files: ['bot/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
