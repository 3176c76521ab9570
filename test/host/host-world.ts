/**
 * The real-host tier's world: the sandbox stack (test/sandbox/stack.ts: the function app, the Durable simulator and
 * every emulator, on the host's 127.0.0.1) with a mirror that serves real squashfs sysext images, the kubelet's CSR
 * endpoint, and one booted machine (machine.ts) that reaches all of it through the port bridge — with the agent's
 * own sysext image installed the way a Flatcar first boot has it (Ignition places the image and agent.json; the
 * host's systemd-sysext merges it at boot).
 *
 * Kernel settings that are not per network namespace (vm.*, kernel.*) cannot change inside a container without
 * changing them for the whole CI machine. The plan's such keys are shadowed inside the machine by files that hold
 * the host's values (bind-mounted over /proc/sys/<key> after each boot): the real `sysctl` writes them, the agent
 * reads and resets them, the host's kernel never sees them. net.* keys are the container's own, for real.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ServiceBusAdministrationClient } from "@azure/service-bus";
import { buildAgent, type BuildInfo } from "../../node-agent/packaging/build.js";
import { outputs } from "../../node-agent/packaging/layout.js";
import type { Timing } from "../../orchestrations/onboard/timing.js";
import { planFor } from "../sandbox/failure-injection.js";
import { startStack, type Stack } from "../sandbox/stack.js";
import { startCsrEndpoint, type CsrEndpoint } from "./csr-endpoint.js";
import { containerdImage, kubernetesImage, MIRROR_NAMES } from "./images.js";
import { HostMachine } from "./machine.js";
import { BRIDGE_MOUNT, startPortBridge, type PortBridge } from "./port-bridge.js";
import { ensureHostRoot, type HostRoot } from "./root-image.js";

export const AGENT_IMAGE = "/var/lib/extensions/flexnode-agent.raw";
export const AGENT_UNIT = "flexnode-agent.service";
const SHADOW_DIR = "sysctl-shadow";

export interface HostWorld {
  image: HostRoot;
  agentBuild: BuildInfo;
  stack: Stack;
  csr: CsrEndpoint;
  bridge: PortBridge;
  machine: HostMachine;
  /** The plan's kernel settings that are not per network namespace, shadowed inside the machine. */
  shadowedSysctls: string[];
  /** Boots the machine (again) and re-applies what a boot loses: the sysctl shadows. */
  boot(): Promise<void>;
  /** Shortens the lock of a node's queue once it exists (the saga creates it): a killed agent's message returns sooner. */
  shortenQueueLock(nodeId: string, lockDuration: string, timeoutMs: number): Promise<void>;
  close(options?: { keep?: boolean }): Promise<void>;
}

export interface HostWorldOptions {
  workDir: string;
  storageConnectionString?: string;
  timing?: Partial<Timing>;
  log?: (line: string) => void;
}

export async function startHostWorld(o: HostWorldOptions): Promise<HostWorld> {
  const log = o.log ?? (() => undefined);
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (error) {
        log(`host world shutdown: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    closers.length = 0;
  };
  try {
    const image = (await ensureHostRoot({ log }))!;
    const agentBuild = await buildAgent({ log: () => undefined, updateSources: false });
    const stackRef: { stack?: Stack } = {};
    const csr = await startCsrEndpoint({ kube: () => stackRef.stack!.kube });
    closers.push(() => csr.close());
    const replace = {
      [MIRROR_NAMES.containerd]: await containerdImage(image),
      [MIRROR_NAMES.kubernetes]: await kubernetesImage({ image, csrUrl: csr.url, csrCa: csr.ca }),
    };
    const stack = await startStack({
      ...(o.storageConnectionString ? { storageConnectionString: o.storageConnectionString } : {}),
      artifacts: { replace },
      ...(o.timing ? { timing: o.timing } : {}),
      log,
    });
    stackRef.stack = stack;
    closers.push(() => stack.close());
    await stack.createDemoPool(10);

    const machine = await HostMachine.prepare({ image, workDir: o.workDir });
    const keep = { value: false };
    closers.push(() => machine.dispose({ keep: keep.value }));
    const port = (url: string) => Number(new URL(url).port);
    const ports = [
      stack.front.port,
      port(stack.sbRunning.endpoint.replace(/^sb:/, "http:")),
      port(stack.kubeServer.server),
      port(stack.artifacts.origin),
      csr.port,
    ];
    const bridge = await startPortBridge(join(machine.dir, "bridge"), ports);
    closers.push(() => bridge.close());

    // Flatcar's first boot, as Ignition leaves it: the agent's image where systemd-sysext finds it, and agent.json
    // trusting the mirror's private CA (the sandbox's artifact mirror and enrolment are on the host).
    await mkdir(machine.path("/var/lib/extensions"), { recursive: true });
    await copyFile(outputs.sysext, machine.path(AGENT_IMAGE));
    await mkdir(machine.path("/etc/flexnode"), { recursive: true, mode: 0o755 });
    await writeFile(machine.path("/etc/flexnode/ca.pem"), stack.artifacts.ca, { mode: 0o644 });
    await writeFile(machine.path("/etc/flexnode/agent.json"), `${JSON.stringify({ caFile: "/etc/flexnode/ca.pem" }, null, 2)}\n`, { mode: 0o600 });

    const plan = planFor({ immutable: true, arch: process.arch === "x64" ? "amd64" : "arm64", catalog: stack.artifacts.catalog });
    const sysctlStep = plan.find((s) => s.kind === "sysctl")!;
    const shadowedSysctls = Object.keys(sysctlStep.params["settings"] as Record<string, string>).filter((k) => !k.startsWith("net."));
    const shadowDir = join(bridge.dir, SHADOW_DIR);
    await mkdir(shadowDir, { recursive: true });
    for (const key of shadowedSysctls) await writeFile(join(shadowDir, key), await readFile(`/proc/sys/${key.replaceAll(".", "/")}`, "utf8"));

    const boot = async () => {
      await machine.boot({ bridge });
      const binds = shadowedSysctls.map((key) => `mount --bind ${BRIDGE_MOUNT}/${SHADOW_DIR}/${key} /proc/sys/${key.replaceAll(".", "/")}`);
      await machine.sh(`set -e\n${binds.join("\n")}\n`);
    };

    const admin = new ServiceBusAdministrationClient(stack.sbRunning.connectionString(), stack.sbRunning.adminClientOptions());
    const shortenQueueLock = async (nodeId: string, lockDuration: string, timeoutMs: number) => {
      const name = `node-${nodeId}`;
      const deadline = Date.now() + timeoutMs;
      while (!stack.sb.inspect.queues().some((q) => q.name === name)) {
        if (Date.now() > deadline) throw new Error(`queue ${name} did not appear within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const queue = await admin.getQueue(name);
      await admin.updateQueue({ ...queue, lockDuration });
    };

    return {
      image,
      agentBuild,
      stack,
      csr,
      bridge,
      machine,
      shadowedSysctls,
      boot,
      shortenQueueLock,
      close: async (options = {}) => {
        keep.value = options.keep ?? false;
        await close();
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The value a shadowed kernel setting holds inside the machine (what the agent wrote or restored). */
export async function shadowedValue(world: HostWorld, key: string): Promise<string> {
  return (await readFile(join(world.bridge.dir, SHADOW_DIR, key), "utf8")).trim();
}
