/** vitest globalSetup: one Azurite for the whole run; tests read its connection string with inject("azuriteConnectionString"). */
import type {} from "vitest";
import type { TestProject } from "vitest/node";
import { startAzurite, type RunningAzurite } from "./azurite.js";

let azurite: RunningAzurite | undefined;

export async function setup(project: TestProject): Promise<void> {
  azurite = await startAzurite();
  project.provide("azuriteConnectionString", azurite.connectionString);
}

export async function teardown(): Promise<void> {
  await azurite?.stop();
  azurite = undefined;
}

declare module "vitest" {
  export interface ProvidedContext {
    azuriteConnectionString: string;
  }
}
