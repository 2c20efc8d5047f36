// Type-aware lint plus the architecture's boundaries (STYLE.md: folders are the architecture).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import path from 'node:path';

// Lives in .config/ so the top level stays as the architecture says; the root is one up.
const root = path.resolve(import.meta.dirname, '..');

const actorsOf = ['session', 'billing', 'allocator', 'demo'];

export default tseslint.config(
  { ignores: ['node_modules/**', '.tmp/**', 'coverage/**'] },
  { basePath: root },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
      'no-console': 'error',
    },
  },
  {
    files: ['contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/actors/**', '**/gateway/**', '**/test/**'] },
      ],
    },
  },
  {
    files: ['gateway/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/actors/**'] }] },
  },
  {
    files: ['actors/runtime/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/gateway/**', ...actorsOf.map((a) => `**/${a}/**`)] },
      ],
    },
  },
  ...actorsOf.map((name) => ({
    files: [`actors/${name}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            '**/gateway/**',
            ...actorsOf.filter((o) => o !== name).map((o) => `**/${o}/**`),
          ],
        },
      ],
    },
  })),
  {
    files: ['test/**/*.ts', '**/*.test.ts', 'deploy/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
