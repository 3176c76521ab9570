/**
 * A host side that plays the node's part in a full onboarding against the real service wiring: every step is
 * recorded on disk (test-host-side.ts), the bootstrap kubeconfig is fetched through the agent's own SecretSource (the
 * signed node API) and written 0600 where the step says, and at the step where the real kubelet would have its client
 * certificate, the node joins the Kubernetes emulator with the bootstrap token from that kubeconfig.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { HostSide } from "../../src/agent.js";
import type { RunStep } from "../../src/ports.js";
import type { KubeEmulator } from "../../../test/kube-emulator/index.js";
import { manifestDigestOf, recordingRunStep } from "./test-host-side.js";

export function kubeletHostSide(kube: KubeEmulator, nodeId: () => string): HostSide & { joined: boolean } {
  let bootstrapToken: string | undefined;
  const side = {
    joined: false,
    manifestDigest: manifestDigestOf,
    runStep: (async (envelope, deps) => {
      if (envelope.kind === "fetchSecret") {
        const value = await deps.secrets.take(String(envelope.params["secretRef"]));
        const path = join(deps.root, String(envelope.params["path"]));
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, value, { mode: 0o600 });
        await chmod(path, 0o600);
        bootstrapToken = /token:\s*(\S+)/.exec(value)?.[1];
      }
      if (envelope.stepId === "kubelet-client-certificate") {
        if (!bootstrapToken)
          return {
            outcome: "failed",
            error: { code: "NoBootstrapToken", message: "the kubelet has no bootstrap token", retryable: false },
            manifestDigest: await manifestDigestOf(deps.root),
          };
        const joined = kube.joinNode(nodeId(), { bootstrapToken, labels: {} });
        if (!joined.joined)
          return {
            outcome: "failed",
            error: { code: "JoinFailed", message: joined.reason, retryable: false },
            manifestDigest: await manifestDigestOf(deps.root),
          };
        side.joined = true;
      }
      return recordingRunStep(envelope, deps);
    }) satisfies RunStep,
  };
  return side;
}
