import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast. Integration tests need root: they build namespace
// labs with a real wireguard-go tunnel, real nftables and real cgroups, so they run
// one file at a time (wireguard-go's control sockets are shared by all namespaces).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
