import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast. Integration tests need root: they build namespace
// labs with a real wireguard-go tunnel, real nftables and real cgroups. Files run one
// at a time: wireguard-go's control sockets are shared by every namespace, and the
// timing-sensitive lab tests should not fight over the machine's two cores.
export default defineConfig({
  test: {
    fileParallelism: false,
    projects: [
      // Deadlines, not measurements: some unit tests use real sockets and child processes,
      // and CI runs once on a loaded machine (load 17 on two cores has been seen), where
      // vitest's 5 s default failed a test that takes 50 ms on a quiet one.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node', testTimeout: 30_000, hookTimeout: 60_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // The campaign's table `kind | case | held` (test/lab/campaign.ts), printed at the end.
          globalSetup: ['test/lab/campaign-report.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      // npm run test:system only (it sets TUNNELGATE_SYSTEM_TEST=1 after building the
      // packages): the .deb on a booted Debian 12 (systemd-nspawn); minutes, not in npm test.
      ...(process.env.TUNNELGATE_SYSTEM_TEST === '1'
        ? [{ test: { name: 'system', include: ['test/system/**/*.test.ts'], environment: 'node' as const, testTimeout: 300_000, hookTimeout: 600_000 } }]
        : []),
    ],
  },
});
