/**
 * `failAt: <stepId>`: make one node step fail ON THE NODE, the way such a step fails on a real machine, so the saga
 * sees a genuine failed result from the real agent and compensates. The mechanism depends on the step's kind:
 *
 * | kind            | what goes wrong                                                            | where            |
 * |-----------------|----------------------------------------------------------------------------|------------------|
 * | preflight       | swap is on (`/proc/swaps` lists a swap file): the swap-off check fails       | node's host files|
 * | kernelModules   | `modprobe <module>` exits 1 (module not found for this kernel)              | simulated host   |
 * | sysctl          | `sysctl -p <drop-in>` exits 255 (key not writable)                          | simulated host   |
 * | fetchArtifact,  | the mirror serves the artifact with one byte flipped: sha256 mismatch      | artifact server  |
 * | installSysext   |   (shared: every node fetching that artifact sees it)                       |                  |
 * | writeFiles      | a regular file sits where the plan needs a directory (`not_a_directory`)    | node's host files|
 * | fetchSecret     | the same, for the secret's directory                                        | node's host files|
 * | systemdUnits    | `systemctl start kubelet.service` exits 1 (the unit fails to start)         | simulated host   |
 * | waitFor         | the kubelet's client CSR is never approved: its certificate never appears  | simulated kubelet|
 */
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { buildNodePlan, type ArtifactCatalog, type PlanStep } from "../../orchestrations/node-plan/node-plan.js";
import type { ArtifactServer } from "./artifact-server.js";
import { KUBERNETES_VERSION } from "./estate.js";
import type { HostFailure } from "./simulated-host.js";

export interface InjectedFailure {
  stepId: string;
  kind: PlanStep["kind"];
  /** What the sandbox does, in words (shown by `npm start --fail-at`). */
  how: string;
  hostFailures: HostFailure[];
  kubeletCsrNeverApproved: boolean;
  /** Applied to the node's root before enrolment (so it is part of the pre-plan tree a reset must restore). */
  seed?(root: string): Promise<void>;
  /** Applied to the shared artifact server. */
  artifact?: string;
}

/** The plan the service will send a node of this OS family and architecture (same builder, same catalog). */
export function planFor(options: { immutable: boolean; arch: "amd64" | "arm64"; catalog: ArtifactCatalog }): PlanStep[] {
  return buildNodePlan({
    nodeName: "fn-sandbox",
    arch: options.arch,
    immutable: options.immutable,
    kubernetesVersion: KUBERNETES_VERSION,
    apiServer: "https://127.0.0.1:443",
    clusterDns: "10.0.0.10",
    labels: {},
    taints: [],
    bootstrapSecretRef: "bootstrap-kubeconfig",
    clusterCaPem: "-----BEGIN CERTIFICATE-----\nMIIBplaceholderclusterca\n-----END CERTIFICATE-----\n",
    catalog: options.catalog,
  });
}

export function failureFor(stepId: string, plan: PlanStep[], artifacts: Pick<ArtifactServer, "nameOf">): InjectedFailure {
  const step = plan.find((s) => s.stepId === stepId);
  if (!step) throw new Error(`--fail-at: no step '${stepId}' in the plan; steps are ${plan.map((s) => s.stepId).join(", ")}`);
  const base = { stepId, kind: step.kind, hostFailures: [] as HostFailure[], kubeletCsrNeverApproved: false };
  const params = step.params as Record<string, unknown>;
  switch (step.kind) {
    case "preflight":
      return {
        ...base,
        how: "swap is enabled on the node (/proc/swaps lists /swapfile): the swap-off check fails",
        seed: (root) =>
          put(root, "/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t2097148\t\t0\t\t-2\n"),
      };
    case "kernelModules": {
      const first = (params.modules as string[])[0]!;
      return {
        ...base,
        how: `modprobe ${first} exits 1 on the node (module not found)`,
        hostFailures: [
          {
            program: "modprobe",
            matches: (a) => !a.includes("-r") && a.includes(first),
            result: {
              code: 1,
              stdout: "",
              stderr: `modprobe: FATAL: Module ${first} not found in directory /lib/modules/6.6.54-flatcar (injected by the sandbox)\n`,
            },
          },
        ],
      };
    }
    case "sysctl": {
      const dropIn = String(params.dropIn);
      return {
        ...base,
        how: `sysctl -p ${dropIn} exits 255 on the node`,
        hostFailures: [
          {
            program: "sysctl",
            matches: (a) => (a.includes("-p") || a.includes("--load")) && a.includes(dropIn),
            result: { code: 255, stdout: "", stderr: 'sysctl: setting key "net.ipv4.ip_forward": Read-only file system (injected by the sandbox)\n' },
          },
        ],
      };
    }
    case "fetchArtifact":
    case "installSysext": {
      const url = String((params.artifact as { url: string }).url);
      const name = artifacts.nameOf(url);
      if (!name) throw new Error(`step ${stepId} fetches ${url}, which the sandbox mirror does not serve`);
      return { ...base, how: `the artifact mirror serves ${name} with one byte flipped (sha256 mismatch)`, artifact: name };
    }
    case "writeFiles": {
      const file = (params.files as { path: string }[])[0]!.path;
      const dir = path.posix.dirname(file);
      return {
        ...base,
        how: `a regular file sits at ${dir}, where the step needs a directory`,
        seed: (root) => put(root, dir, "not a directory (placed by the sandbox to make writeFiles fail)\n"),
      };
    }
    case "fetchSecret": {
      const dir = path.posix.dirname(String(params.path));
      return {
        ...base,
        how: `a regular file sits at ${dir}, where the bootstrap kubeconfig's directory belongs`,
        seed: (root) => put(root, dir, "not a directory (placed by the sandbox to make fetchSecret fail)\n"),
      };
    }
    case "systemdUnits":
      return {
        ...base,
        how: "systemctl start kubelet.service exits 1 on the node (the unit fails to start)",
        hostFailures: [
          {
            program: "systemctl",
            matches: (a) => (a.includes("start") || a.includes("--now") || a.includes("restart")) && a.includes("kubelet.service"),
            result: {
              code: 1,
              stdout: "",
              stderr:
                'Job for kubelet.service failed because the control process exited with error code.\nSee "systemctl status kubelet.service" and "journalctl -xeu kubelet.service" for details. (injected by the sandbox)\n',
            },
          },
        ],
      };
    case "waitFor":
      return { ...base, how: "the kubelet's client CSR is never approved, so its certificate never appears", kubeletCsrNeverApproved: true };
    case "reset":
      throw new Error("reset is not a plan step");
  }
}

async function put(root: string, hostPath: string, content: string): Promise<void> {
  const fsPath = path.join(root, hostPath);
  await mkdir(path.dirname(fsPath), { recursive: true });
  await writeFile(fsPath, content);
}
