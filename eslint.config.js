// Layering is enforced here, not by review: common/ is the bottom layer,
// renderer/ is a browser page with no Node, helper/ never sees Electron.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['node:*', 'fs', 'child_process', 'net', 'os', 'path', 'crypto'];

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['common/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/helper/**', '**/main/**', '**/renderer/**', 'electron', './node/**', ...nodeBuiltins],
          message: 'common/*.ts is shared with the renderer: no Node, no Electron, no upper layers.' },
      ] }],
    },
  },
  {
    files: ['common/node/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/helper/**', '**/main/**', '**/renderer/**', 'electron'],
          message: 'common/node is shared by helper, CLI and main: it imports only common/.' },
      ] }],
    },
  },
  {
    files: ['helper/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['electron', '**/main/**', '**/renderer/**'], message: 'helper/ runs without any UI.' },
      ] }],
    },
  },
  {
    files: ['main/**/*.ts', 'main/**/*.cts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['**/helper/**', '**/renderer/**'], message: 'main/ talks to the helper only through common/node/client.' },
      ] }],
    },
  },
  {
    files: ['renderer/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['electron', '**/helper/**', '**/main/**', '**/common/node/**', ...nodeBuiltins],
          message: 'renderer/ is untrusted web content: it talks only through the preload API.' },
      ] }],
    },
  },
);
