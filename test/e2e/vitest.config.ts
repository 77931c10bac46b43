import { defineConfig } from 'vitest/config';

// `npm run e2e`: the built tray page in Debian's Chromium against a real helper in a lab
// (as root: namespaces, nftables, cgroups), through the development bridge. One file, one
// lab; screenshots and figures go to dist/e2e/.
export default defineConfig({
  test: {
    name: 'e2e',
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/e2e/**/*.e2e.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
