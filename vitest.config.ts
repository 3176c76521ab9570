import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "node-agent/**/*.test.ts"],
    // The fake @azure/functions-core must be in place before any function module loads.
    setupFiles: ["test/functions-host/setup.ts"],
    globalSetup: ["test/azurite/global-setup.ts"],
    // Emulators bind ephemeral ports; forks keep each file's servers and module registry apart.
    pool: "forks",
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
