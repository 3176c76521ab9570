/**
 * One node, end to end and in real time: the real agent enrols over HTTP with the enrolment URL the admin API gave
 * out, the saga creates the Azure objects, sends signed steps through the node's own Service Bus queue, the agent runs
 * them with the real executors in its sandbox root (host commands simulated), the simulated kubelet joins with the
 * bootstrap token, and the node ends Ready — with exactly the expected objects and no bootstrap credential left.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signNodeRequest } from "../../contract/node-request.js";
import { loadIdentity } from "../../node-agent/src/identity.js";
import { BUILT_IN_ROLES } from "../arm-emulator/index.js";
import {
  ARC_RG_ID,
  CLUSTER_ID,
  DEMO_POOL,
  planFor,
  sandboxHostSide,
  startFleet,
  treeSnapshot,
  type Fleet,
  type NodeOutcome,
  type Stack,
} from "../sandbox/index.js";
import { nodeQueues, startE2eStack, stepsOf } from "./support.js";

let stack: Stack;
let serviceLog: string[];
let fleet: Fleet | undefined;
let outcome: NodeOutcome;

beforeAll(async () => {
  ({ stack, serviceLog } = await startE2eStack());
  const { enrolmentUrl } = await stack.createToken({ maxUses: 1 });
  fleet = await startFleet({ stack, enrolmentUrl, hostSide: sandboxHostSide, specs: [{ name: "edge-01", immutable: true, arch: "amd64", index: 1 }] });
  [outcome] = (await fleet.settle(90_000)) as [NodeOutcome];
}, 120_000);

afterAll(async () => {
  await fleet?.stop({ removeRoots: true });
  await stack?.close();
});

describe("one node, HTTP enrolment to Ready through the real agent", () => {
  it("ends Ready, and the admin API says so", async () => {
    const node = outcome.node;
    expect(node.error).toBeUndefined();
    expect({ status: outcome.status, output: outcome.saga?.output, custom: outcome.saga?.customStatus, log: serviceLog }).toMatchObject({
      status: "Ready",
      output: { status: "Ready" },
      custom: { phase: "done" },
    });
    // The agent enrolled through the front door, as a node on the network would.
    expect(stack.front.requests).toContainEqual({ method: "POST", path: "/api/enrol", status: 201 });
    expect(node.enrolment).toMatchObject({ httpStatus: 201, pool: DEMO_POOL });
    const view = await stack.admin("GET", `/api/manage/nodes/${node.nodeId!}`);
    expect(view.status).toBe(200);
    expect(view.json).toMatchObject({ nodeId: node.nodeId, pool: DEMO_POOL, status: "Ready" });
  });

  it("announced the node as enrolled, then ready, to the sandbox's Event Grid topic, once each", () => {
    const mine = stack.events.events().filter((e) => e.subject === `nodes/${outcome.node.nodeId!}`);
    expect(mine.map((e) => e.type)).toEqual(["dev.flexnode.node.enrolled", "dev.flexnode.node.ready"]);
    expect(mine.map((e) => e.data)).toEqual([
      { nodeId: outcome.node.nodeId, pool: DEMO_POOL, hostname: "edge-01", approvalRequired: false },
      expect.objectContaining({ nodeId: outcome.node.nodeId, pool: DEMO_POOL }),
    ]);
  });

  it("serves the admin API only to the sandbox admin: a caller's own principal header is stripped", async () => {
    const forged = Buffer.from(JSON.stringify({ claims: [{ typ: "roles", val: "FlexNode.Admin" }] })).toString("base64");
    expect((await fetch(`${stack.url}/api/manage/nodes`, { headers: { "x-ms-client-principal": forged } })).status).toBe(401);
    expect((await fetch(`${stack.url}/api/manage/nodes`, { headers: { authorization: "Bearer not-the-token" } })).status).toBe(401);
    expect((await stack.admin("GET", "/api/manage/nodes")).status).toBe(200);
  });

  it("ran every plan step once, in order, with the real executors", () => {
    const plan = planFor({ immutable: true, arch: "amd64", catalog: stack.artifacts.catalog });
    expect(stepsOf(outcome.node)).toEqual(plan.map((s) => `${s.stepId}#1 succeeded`));
    expect(outcome.node.events.filter((e) => e.event.type === "envelope-refused" || e.event.type === "result-resent")).toEqual([]);
    expect(outcome.node.host.lines()).toEqual([
      "modprobe overlay",
      "modprobe br_netfilter",
      "sysctl -p /etc/sysctl.d/99-flexnode-kubernetes.conf",
      "systemd-sysext refresh",
      "systemd-sysext refresh",
      "systemctl daemon-reload",
      "systemctl is-enabled containerd.service",
      "systemctl is-enabled kubelet.service",
      "systemctl enable containerd.service",
      "systemctl is-active containerd.service",
      "systemctl start containerd.service",
      "systemctl enable kubelet.service",
      "systemctl is-active kubelet.service",
      "systemctl start kubelet.service",
    ]);
    expect(outcome.node.host.activeUnits()).toEqual(["containerd.service", "kubelet.service"]);
  });

  it("left the node's files where the plan puts them, and /usr untouched", async () => {
    const { root, prePlan } = outcome.node;
    const sha = async (p: string) =>
      createHash("sha256")
        .update(await readFile(path.join(root, p)))
        .digest("hex");
    expect(await sha("/var/lib/extensions/containerd.raw")).toBe(stack.artifacts.catalog.sysext.containerd.amd64!.sha256);
    expect(await sha("/var/lib/extensions/kubernetes-1.31.2.raw")).toBe(stack.artifacts.catalog.sysext.kubernetes["1.31.2"]!.amd64!.sha256);
    expect(((await stat(path.join(root, "/opt/cni/bin/bridge"))).mode & 0o777).toString(8)).toBe("755");
    expect(((await stat(path.join(root, "/var/lib/kubelet/bootstrap-kubeconfig"))).mode & 0o777).toString(8)).toBe("600");
    expect(await readFile(path.join(root, "/etc/systemd/system/kubelet.service"), "utf8")).toContain(
      "--bootstrap-kubeconfig=/var/lib/kubelet/bootstrap-kubeconfig",
    );
    expect(await readFile(path.join(root, "/var/lib/kubelet/pki/kubelet-client-current.pem"), "utf8")).toContain("BEGIN CERTIFICATE");
    expect(await readFile(path.join(root, "/proc/sys/net/ipv4/ip_forward"), "utf8")).toBe("1\n");
    const usr = (entries: string[]) => entries.filter((e) => e.startsWith("usr/"));
    expect(usr((await treeSnapshot(root)).entries)).toEqual(usr(prePlan!.entries));
  });

  it("created exactly the expected Azure objects", () => {
    const id = outcome.node.nodeId!;
    const machines = stack.arm.inspect.machines();
    expect(machines.map((m) => m.id)).toEqual([`${ARC_RG_ID}/providers/Microsoft.HybridCompute/machines/${id}`]);
    expect(machines[0]!.tags).toEqual({ env: "sandbox", "managed-by": "flexnode-onboarding", "flexnode-node": id, "flexnode-pool": DEMO_POOL });
    const grants = stack.arm.inspect
      .roleAssignments()
      .map((g) => ({ scope: g.scope, role: g.roleDefinitionId.split("/").pop(), principalId: g.principalId, principalType: g.principalType }));
    expect(grants).toHaveLength(2);
    expect(grants).toEqual(
      expect.arrayContaining([
        {
          scope: CLUSTER_ID,
          role: BUILT_IN_ROLES["Azure Kubernetes Service Cluster User Role"],
          principalId: machines[0]!.principalId,
          principalType: "ServicePrincipal",
        },
        { scope: ARC_RG_ID, role: BUILT_IN_ROLES.Reader, principalId: machines[0]!.principalId, principalType: "ServicePrincipal" },
      ]),
    );
    expect(nodeQueues(stack)).toEqual([`node-${id}`]);
    // The service wrote to ARM only what the design says: one machine PUT and two grants.
    expect(stack.arm.requests.filter({ method: "PUT" }).map((r) => r.route)).toEqual(["machines.put", "roleAssignments.put", "roleAssignments.put"]);
    expect(stack.arm.requests.filter({ method: "DELETE" })).toEqual([]);
  });

  it("registered the Node under the node id with the pool's labels, and left no bootstrap credential", async () => {
    const id = outcome.node.nodeId!;
    const kube = stack.kube.inspect();
    expect(kube.nodes.map((n) => ({ name: n.name, ready: n.ready }))).toEqual([{ name: id, ready: "True" }]);
    expect(kube.nodes[0]!.labels).toMatchObject({ "flexnode.dev/sandbox": "true", "flexnode.dev/node": id, "kubernetes.azure.com/managed": "false" });
    expect(kube.joins.map((j) => j.node)).toEqual([id]);
    expect(kube.joins[0]!.groups).toContain(`system:bootstrappers:flexnode:${DEMO_POOL}`);
    expect(kube.secrets.filter((s) => s.type === "bootstrap.kubernetes.io/token")).toEqual([]);
    expect(
      kube.clusterRoleBindings
        .filter((b) => !b.builtIn)
        .map((b) => `${b.name} -> ${b.roleRef.name}`)
        .sort(),
    ).toEqual([
      `flexnode:${DEMO_POOL}:auto-approve-node-client-csr -> system:certificates.k8s.io:certificatesigningrequests:nodeclient`,
      `flexnode:${DEMO_POOL}:auto-approve-node-client-renewal -> system:certificates.k8s.io:certificatesigningrequests:selfnodeclient`,
      `flexnode:${DEMO_POOL}:node-bootstrapper -> system:node-bootstrapper`,
    ]);

    // The token the node was given no longer authenticates, and its sealed copy is gone from the node API.
    const kubeconfig = await readFile(path.join(outcome.node.root, "/var/lib/kubelet/bootstrap-kubeconfig"), "utf8");
    const token = /token:\s*(\S+)/.exec(kubeconfig)![1]!;
    expect(stack.kube.authenticateBootstrapToken(token)).toBeUndefined();
    const identity = (await loadIdentity(outcome.node.root))!;
    const url = `/api/node/secrets/bootstrap-kubeconfig`;
    const headers = await signNodeRequest({ method: "POST", url, body: "" }, { privateKey: identity.privateKey, now: new Date() });
    const again = await fetch(`${stack.url}${url}`, { method: "POST", headers });
    expect(again.status).toBe(404);

    // Secrets travel only over the node API: no message that reached any queue carries the token or a key. The one PEM
    // block that does travel is the cluster CA certificate (public) for the kubelet's client CA file.
    const bodies = stack.sb.log.entries.flatMap((e) => (e.kind === "enqueued" ? [JSON.stringify(e.body)] : []));
    expect(bodies.length).toBeGreaterThan(0);
    expect(bodies.filter((b) => b.includes(token) || b.includes(token.split(".")[1]!) || /-----BEGIN (?!CERTIFICATE-----)/.test(b))).toEqual([]);
    expect(bodies.filter((b) => b.includes("BEGIN CERTIFICATE")).map((b) => (JSON.parse(b) as { stepId: string }).stepId)).toEqual(["kubelet-config"]);
  });
});
