/**
 * The node steps of an onboarding, as data the service builds per OS family and the agent executes with its fixed
 * executors: no shell, every artifact pinned by sha256, every path under /etc, /var or /opt (never /usr). Immutable
 * hosts (read-only /usr: Flatcar, Fedora CoreOS/IoT, bootc, Kairos) get the container runtime and Kubernetes binaries
 * as systemd-sysext images in /var/lib/extensions; mutable distros get them under /opt/flexnode.
 *
 * No pod network is configured here: a node outside the cluster's VNet cannot take part in kubenet or Azure CNI (the
 * Azure route tables and SDN that carry their pod traffic never reach it), so pools require a cluster without a
 * network plugin (use-cases/pool-cluster.ts) whose overlay CNI DaemonSet writes each node's CNI config itself, as the
 * upstream AKS Flex Node E2E does. The plan only installs the CNI plugin binaries that such CNIs expect in /opt/cni/bin.
 */
import type { JsonObject } from "../../contract/json.js";
import { KUBELET_NODE_LABEL } from "../clients/kube/labels.js";
import type { StepKind } from "../../contract/step-envelope.js";

export interface PlanStep {
  stepId: string;
  kind: StepKind;
  params: JsonObject;
  /** How long one attempt may take before the saga gives up on it. */
  timeoutMs: number;
  /** Attempts before the step fails the saga (every executor is idempotent, so a retry converges). */
  maxAttempts: number;
}

export interface Artifact {
  url: string;
  sha256: string;
}

/** Where the agent may fetch artifacts, pinned per Kubernetes version and architecture. */
export interface ArtifactCatalog {
  containerd: Record<string, Artifact>;
  kubernetes: Record<string, Record<string, Artifact>>;
  cniPlugins: Record<string, Artifact>;
  /**
   * runc for mutable hosts: containerd's release tarball does not contain it (containerd getting-started, "Installing
   * runc"). Optional: without it a mutable node's containerd runs the host's own runc (found on its PATH), as plans
   * did before the catalog had one, so a catalog and the sagas in flight keep working across an upgrade (immutable
   * hosts get runc in the containerd image).
   */
  runc?: Record<string, Artifact>;
  sysext: { containerd: Record<string, Artifact>; kubernetes: Record<string, Record<string, Artifact>> };
  /** Where nodes download the agent itself (join configs); optional: node plans never need it. */
  agent?: { version: string; executable: Record<string, Artifact>; sysext: Record<string, Artifact> };
}

export interface PlanInput {
  nodeName: string;
  arch: "amd64" | "arm64";
  immutable: boolean;
  kubernetesVersion: string;
  apiServer: string;
  clusterDns: string;
  labels: Record<string, string>;
  taints: { key: string; value?: string; effect: string }[];
  /** Reference of the one-time secret holding the bootstrap kubeconfig. */
  bootstrapSecretRef: string;
  /** The cluster CA (public): the kubelet authenticates the API server's client certificate with it. */
  clusterCaPem: string;
  catalog: ArtifactCatalog;
}

const KUBELET_PKI = "/var/lib/kubelet/pki";
const CLUSTER_CA_FILE = "/etc/kubernetes/certs/ca.crt";
const CONTAINERD_UNIT = "flexnode-containerd.service";
const CONTAINERD_DIR = "/opt/flexnode/containerd";
const CONTAINERD_CONFIG = "/etc/flexnode/containerd/config.toml";
const CNI_MARKER = "/etc/cni/net.d/README.flexnode";
const RUNC_PATH = "/opt/flexnode/bin/runc";
/**
 * Drop-ins that Kubernetes packages and images ship in /usr/lib/systemd/system/kubelet.service.d/ and that would
 * rewrite the plan's kubelet unit (kubeadm's resets ExecStart to its own flags and files; pkgs.k8s.io deb/rpm, the
 * Flatcar sysext-bakery kubernetes image). A same-named drop-in in /etc replaces one in /usr/lib (systemd.unit(5)), so
 * the plan writes one that holds only a comment: recorded like every written file, and a reset takes it away again.
 */
const MASKED_KUBELET_DROP_INS = ["10-kubeadm.conf"];

export function buildNodePlan(p: PlanInput): PlanStep[] {
  const k8s = (table: Record<string, Record<string, Artifact>>): Artifact => {
    const a = table[p.kubernetesVersion]?.[p.arch];
    if (!a) throw new Error(`no Kubernetes ${p.kubernetesVersion} artifact for ${p.arch} in the catalog`);
    return a;
  };
  const byArch = (table: Record<string, Artifact> | undefined, what: string): Artifact => {
    const a = table?.[p.arch];
    if (!a) throw new Error(`no ${what} artifact for ${p.arch} in the catalog`);
    return a;
  };
  const bin = p.immutable ? "/var/lib/extensions" : "/opt/flexnode";
  const kubeletPath = p.immutable ? "/usr/bin/kubelet" : "/opt/flexnode/bin/kubelet";
  const labels = Object.entries({ ...p.labels, "kubernetes.azure.com/managed": "false", [KUBELET_NODE_LABEL]: p.nodeName })
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const taints = p.taints.map((t) => `${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`).join(",");
  const steps: PlanStep[] = [
    step(
      "preflight",
      "preflight",
      {
        checks: ["root", "cgroup-v2", "swap-off", "kernel-modules", "ports", "var-free-space", "clock", "api-server-reachable"],
        apiServer: p.apiServer,
        expectImmutable: p.immutable,
      },
      120_000,
      2,
    ),
    step("kernel-modules", "kernelModules", { modules: ["overlay", "br_netfilter"], persistFile: "/etc/modules-load.d/flexnode.conf" }, 60_000),
    step(
      "sysctl",
      "sysctl",
      {
        dropIn: "/etc/sysctl.d/99-flexnode-kubernetes.conf",
        settings: {
          "net.bridge.bridge-nf-call-iptables": "1",
          "net.bridge.bridge-nf-call-ip6tables": "1",
          "net.ipv4.ip_forward": "1",
          "vm.overcommit_memory": "1",
          "kernel.panic": "10",
          "kernel.panic_on_oops": "1",
        },
      },
      60_000,
    ),
  ];
  if (p.immutable) {
    steps.push(
      step(
        "container-runtime",
        "installSysext",
        { name: "containerd", artifact: art(byArch(p.catalog.sysext.containerd, "containerd sysext")), directory: bin, refresh: true },
        600_000,
      ),
      step(
        "kubernetes-binaries",
        "installSysext",
        { name: `kubernetes-${p.kubernetesVersion}`, artifact: art(k8s(p.catalog.sysext.kubernetes)), directory: bin, refresh: true },
        600_000,
      ),
    );
  } else {
    steps.push(
      step(
        "container-runtime",
        "fetchArtifact",
        { artifact: art(byArch(p.catalog.containerd, "containerd")), destination: CONTAINERD_DIR, unpack: "tar.gz" },
        600_000,
      ),
      ...(p.catalog.runc
        ? [step("runc", "fetchArtifact", { artifact: art(byArch(p.catalog.runc, "runc")), destination: RUNC_PATH, mode: "0755" }, 300_000)]
        : []),
      step(
        "kubernetes-binaries",
        "fetchArtifact",
        { artifact: art(k8s(p.catalog.kubernetes)), destination: "/opt/flexnode/bin/kubelet", mode: "0755" },
        600_000,
      ),
    );
  }
  steps.push(
    step(
      "cni-plugins",
      "fetchArtifact",
      { artifact: art(byArch(p.catalog.cniPlugins, "CNI plugins")), destination: "/opt/cni/bin", unpack: "tar.gz" },
      300_000,
    ),
    step(
      "kubelet-config",
      "writeFiles",
      {
        files: [
          { path: "/etc/flexnode/kubelet/config.yaml", mode: "0644", content: kubeletConfig(p) },
          { path: "/etc/systemd/system/kubelet.service", mode: "0644", content: kubeletUnit(kubeletPath, p.nodeName, labels, taints) },
          { path: CLUSTER_CA_FILE, mode: "0644", content: p.clusterCaPem },
          ...MASKED_KUBELET_DROP_INS.map((name) => ({ path: `/etc/systemd/system/kubelet.service.d/${name}`, mode: "0644", content: maskedDropIn(name) })),
          // The directory the cluster's overlay CNI writes this node's config into. containerd creates it (0700) when it
          // is missing, outside anything the agent records, so a reset would leave it behind: the plan creates it first,
          // through a file CNI never loads (libcni reads only .conf, .conflist and .json), so a reset removes both.
          { path: CNI_MARKER, mode: "0644", content: "# flexnode: the cluster's overlay CNI writes this node's network configuration here.\n" },
          // Immutable hosts get containerd.service from the sysext image; elsewhere the agent's containerd needs a unit.
          ...(p.immutable
            ? []
            : [
                { path: CONTAINERD_CONFIG, mode: "0644", content: containerdConfig(p.catalog.runc ? RUNC_PATH : undefined) },
                { path: `/etc/systemd/system/${CONTAINERD_UNIT}`, mode: "0644", content: containerdUnit() },
              ]),
        ],
      },
      60_000,
    ),
    step("bootstrap-kubeconfig", "fetchSecret", { secretRef: p.bootstrapSecretRef, path: "/var/lib/kubelet/bootstrap-kubeconfig", mode: "0600" }, 60_000, 2),
    step(
      "start-kubelet",
      "systemdUnits",
      {
        daemonReload: true,
        units: [
          { name: p.immutable ? "containerd.service" : CONTAINERD_UNIT, enable: true, start: true },
          { name: "kubelet.service", enable: true, start: true },
        ],
      },
      120_000,
    ),
    step("kubelet-client-certificate", "waitFor", { file: `${KUBELET_PKI}/kubelet-client-current.pem`, timeoutSeconds: 300 }, 330_000, 1),
  );
  return steps;
}

function step(stepId: string, kind: StepKind, params: JsonObject, timeoutMs: number, maxAttempts = 3): PlanStep {
  return { stepId, kind, params, timeoutMs, maxAttempts };
}

const art = (a: Artifact): JsonObject => ({ url: a.url, sha256: a.sha256 });

function kubeletConfig(p: PlanInput): string {
  return [
    "apiVersion: kubelet.config.k8s.io/v1beta1",
    "kind: KubeletConfiguration",
    "authentication:",
    "  anonymous: { enabled: false }",
    "  webhook: { enabled: true }",
    `  x509: { clientCAFile: ${CLUSTER_CA_FILE} }`,
    "authorization: { mode: Webhook }",
    "cgroupDriver: systemd",
    `clusterDNS: [${p.clusterDns}]`,
    "clusterDomain: cluster.local",
    "protectKernelDefaults: true",
    "readOnlyPort: 0",
    "rotateCertificates: true",
    // The kubelet serves :10250 (logs, exec, metrics) with a certificate it signs itself, as AKSFlexNode's do: a
    // kubelet-serving CSR is never auto-approved, and nothing here approves one, so with serverTLSBootstrap the
    // kubelet would have no serving certificate at all and every `kubectl logs` on the node would fail.
    "serverTLSBootstrap: false",
    "",
  ].join("\n");
}

function kubeletUnit(kubelet: string, nodeName: string, labels: string, taints: string): string {
  return [
    "[Unit]",
    "Description=Kubernetes kubelet (flexnode)",
    "After=network-online.target containerd.service flexnode-containerd.service",
    "Wants=network-online.target",
    "[Service]",
    `ExecStart=${kubelet} --config=/etc/flexnode/kubelet/config.yaml --bootstrap-kubeconfig=/var/lib/kubelet/bootstrap-kubeconfig --kubeconfig=/var/lib/kubelet/kubeconfig --cert-dir=${KUBELET_PKI} --container-runtime-endpoint=unix:///run/containerd/containerd.sock --hostname-override=${nodeName} --node-labels=${labels}${taints ? ` --register-with-taints=${taints}` : ""}`,
    // Declared so the agent records /var/lib/kubelet as the unit's and a reset takes the kubelet's state with it.
    "StateDirectory=kubelet",
    "Restart=always",
    "RestartSec=10",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** containerd from the release tarball unpacked in /opt/flexnode/containerd (bin/containerd and its shims). */
function containerdUnit(): string {
  return [
    "[Unit]",
    "Description=containerd container runtime (flexnode)",
    "After=network-online.target local-fs.target",
    "Wants=network-online.target",
    "[Service]",
    `Environment=PATH=${CONTAINERD_DIR}/bin:/opt/flexnode/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    `ExecStart=${CONTAINERD_DIR}/bin/containerd --config ${CONTAINERD_CONFIG}`,
    "StateDirectory=containerd",
    "Type=notify",
    "Delegate=yes",
    "KillMode=process",
    "Restart=always",
    "RestartSec=5",
    "LimitNOFILE=infinity",
    "TasksMax=infinity",
    "OOMScoreAdjust=-999",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/**
 * Without a config containerd's runc runtime uses cgroupfs, while the kubelet is told cgroupDriver: systemd: the two
 * would manage the pod cgroups twice. Version 2 is the format containerd 1.7 reads, and containerd 2.x migrates it
 * when it loads it, so the file fits whichever release the operator's catalog pins (the catalog carries digests, not
 * versions). The CNI directories are containerd's defaults, spelled out as the contract with the cluster's overlay CNI.
 */
function containerdConfig(runc: string | undefined): string {
  return [
    "version = 2",
    "",
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    '  default_runtime_name = "runc"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '  runtime_type = "io.containerd.runc.v2"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    ...(runc ? [`  BinaryName = "${runc}"`] : []),
    "  SystemdCgroup = true",
    '[plugins."io.containerd.grpc.v1.cri".cni]',
    '  bin_dir = "/opt/cni/bin"',
    '  conf_dir = "/etc/cni/net.d"',
    "",
  ].join("\n");
}

function maskedDropIn(name: string): string {
  return `# flexnode: replaces /usr/lib/systemd/system/kubelet.service.d/${name}, which would override the kubelet unit flexnode writes.\n`;
}
