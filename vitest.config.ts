import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // A liveness bound, not a speed one: some unit tests start node processes (config
          // checks, the healthcheck, the daemons), which take seconds each with a core kept busy
          // (over 5 s, vitest's default, in a full run beside a CPU burner). A hang still fails.
          testTimeout: 30_000,
          globalSetup: ['test/support/fixture-modes.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One lab at a time: guests run under TCG on two cores, so files run in sequence.
          fileParallelism: false,
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
