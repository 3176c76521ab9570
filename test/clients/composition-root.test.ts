import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { ArmClients } from "../../orchestrations/clients/arm/arm-clients.js";
import { buildServices, createServiceProvider } from "../../functions/composition-root.js";
import { NotConfiguredError, parseSettings } from "../../orchestrations/settings.js";
import { emulatorCredential } from "../arm-emulator/index.js";
import { uniquePrefix } from "../registry/fixtures.js";

const settingsFor =
  (prefix: string, extra: Record<string, string> = {}) =>
  () =>
    parseSettings({ DURABLE_TASK_HUB: "FlexNodeTest", REGISTRY_CONNECTION: inject("azuriteConnectionString"), REGISTRY_TABLE_PREFIX: prefix, ...extra });

describe("composition root", () => {
  it("gives each provider its own clients: two apps in one process never share a registry or ARM clients", async () => {
    const armA = new ArmClients({ credential: emulatorCredential("00000000-0000-4000-8000-00000000000a") });
    const armB = new ArmClients({ credential: emulatorCredential("00000000-0000-4000-8000-00000000000b") });
    const a = await createServiceProvider({ settings: settingsFor(uniquePrefix()), parts: { arm: armA } })();
    const b = await createServiceProvider({ settings: settingsFor(uniquePrefix()), parts: { arm: armB } })();
    expect(a.arm()).toBe(armA);
    expect(b.arm()).toBe(armB);
    expect(a.registry).not.toBe(b.registry);
  });

  it("builds clients once per settings and again when the settings change", async () => {
    const prefix = uniquePrefix();
    let extra: Record<string, string> = {};
    const provider = createServiceProvider({ settings: () => settingsFor(prefix, extra)() });
    const first = await provider();
    expect(await provider()).toBe(first);
    extra = { SWEEP_REMOVE_ORPHANS: "true" };
    const second = await provider();
    expect(second).not.toBe(first);
    expect(second.settings.SWEEP_REMOVE_ORPHANS).toBe("true");
  });

  it("builds a client only when it is used, and names the missing setting then", () => {
    const services = buildServices(settingsFor(uniquePrefix())());
    expect(() => services.mailbox()).toThrow(NotConfiguredError);
    expect(() => services.signingKey()).toThrow(/SERVICE_SIGNING_KEY is not set/);
    expect(() => services.secrets()).toThrow(/SECRETS_KEY is not set/);
  });
});
