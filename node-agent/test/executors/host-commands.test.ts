import { describe, expect, it } from "vitest";
import { RecordingHostCommands, realHostCommands } from "../../src/host-commands.js";

describe("realHostCommands", () => {
  const host = realHostCommands({ maxOutputBytes: 256 });

  it("runs a host program from the system directories without a shell", async () => {
    // Read-only: prints the kernel's name. Shell syntax in an argument stays a literal argument.
    expect(await host.run("sysctl", ["-n", "kernel.ostype"])).toEqual({ code: 0, stdout: "Linux\n", stderr: "" });
    const literal = await host.run("sysctl", ["-n", "kernel.ostype; echo injected"]);
    expect(literal.code).not.toBe(0);
    expect(literal.stdout).not.toContain("injected");
  });

  it("caps the output it keeps", async () => {
    const r = await host.run("sysctl", ["-a"]);
    expect(r.stdout.length).toBeLessThan(256 + 64);
    expect(r.stdout).toMatch(/\[\d+ bytes dropped\]$/);
  });

  it("refuses anything but the four host programs", async () => {
    await expect(host.run("sh" as never, ["-c", "true"])).rejects.toThrow(/not a host program/);
  });
});

describe("RecordingHostCommands", () => {
  it("records every call and answers from its script, with exit 0 by default", async () => {
    const host = new RecordingHostCommands((program, args) => (args[0] === "is-active" ? { code: 3, stdout: "inactive\n", stderr: "" } : undefined));
    expect(await host.run("systemctl", ["is-active", "kubelet.service"])).toEqual({ code: 3, stdout: "inactive\n", stderr: "" });
    expect(await host.run("systemctl", ["start", "kubelet.service"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(host.lines()).toEqual(["systemctl is-active kubelet.service", "systemctl start kubelet.service"]);
  });
});
