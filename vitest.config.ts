import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The fake @azure/functions-core must be in place before any function module loads.
    setupFiles: ["test/functions-host/setup.ts"],
    // Emulators bind ephemeral ports; forks keep each file's servers and module registry apart.
    pool: "forks",
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts", "node-agent/**/*.test.ts"],
          exclude: ["test/host/**"],
          globalSetup: ["test/azurite/global-setup.ts"],
        },
      },
      {
        // The real-host tier boots a container with real systemd (test/host/): after every other tier (groupOrder),
        // one file at a time, with its own Azurite, and with the time a boot, a plan and a reset take.
        extends: true,
        test: {
          name: "host",
          include: ["test/host/**/*.test.ts"],
          sequence: { groupOrder: 1 },
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
