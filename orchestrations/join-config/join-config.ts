/**
 * Join configurations: what a user pastes into their provisioning so a machine installs the agent, enrols with a
 * fresh token and starts the unit. Immutable hosts (Butane / Ignition, Flatcar) get the agent's systemd-sysext image,
 * downloaded and hash-checked by Ignition; mutable hosts (cloud-init, a shell script) get the single executable
 * under /opt/flexnode/bin, sha256-checked before it is installed, and the shipped unit. The enrolment URL and token
 * go to /etc/flexnode/agent.json (0600); the first-boot enrol unit mirrors node-agent/packaging/flatcar/flexnode.bu.
 * Where the agent is downloaded from is configuration: the `agent` section of ARTIFACT_CATALOG.
 */
import * as YAML from "yaml";
import { formatIgnition, toIgnition, type ButaneConfig } from "../../node-agent/packaging/flatcar/butane.js";
import { NotConfiguredError } from "../settings.js";
import type { ArtifactCatalog } from "../node-plan/node-plan.js";
import { AGENT_UNIT } from "./agent-unit.js";

export const JOIN_FORMATS = ["cloud-init", "butane", "ignition", "shell"] as const;
export type JoinFormat = (typeof JOIN_FORMATS)[number];

export interface JoinInput {
  format: JoinFormat;
  arch: "amd64" | "arm64";
  /** https://<service>/api/enrol */
  enrolmentUrl: string;
  token: string;
  catalog: ArtifactCatalog;
}

const SYSEXT_ARCH = { amd64: "x86-64", arm64: "arm64" } as const;

const ENROL_UNIT = `[Unit]
Description=Enrol this node with the flexnode service (first boot)
ConditionPathExists=!/var/lib/flexnode/state.json
Wants=network-online.target
After=network-online.target
Before=flexnode-agent.service

[Service]
Type=oneshot
ExecStart=%BIN% enrol
Restart=on-failure
RestartSec=30s
RestartPreventExitStatus=2 5 77 78

[Install]
WantedBy=multi-user.target
`;
const ENROL_FIRST = "[Unit]\nWants=flexnode-enrol.service\nAfter=flexnode-enrol.service\n";

export function renderJoinConfig(input: JoinInput): { contentType: string; content: string } {
  const agent = input.catalog.agent;
  if (!agent) throw new NotConfiguredError("ARTIFACT_CATALOG.agent (where nodes download the agent)");
  const agentJson = `${JSON.stringify({ enrolmentUrl: input.enrolmentUrl, token: input.token })}\n`;
  switch (input.format) {
    case "butane":
      return {
        contentType: "application/yaml",
        content: header("Butane (variant flatcar 1.0.0) for Flatcar: `butane --strict`") + YAML.stringify(butane(input, agentJson)),
      };
    case "ignition":
      return { contentType: "application/json", content: formatIgnition(toIgnition(butane(input, agentJson))) };
    case "cloud-init":
      return { contentType: "text/cloud-config", content: cloudInit(input, agentJson) };
    case "shell":
      return { contentType: "text/x-shellscript", content: shell(input, agentJson) };
  }
}

const header = (what: string) => `# flexnode join configuration: ${what}.\n# It holds an enrolment token: treat it as a secret until the node has enrolled.\n`;

function butane(input: JoinInput, agentJson: string): ButaneConfig {
  const image = input.catalog.agent!.sysext[input.arch];
  if (!image) throw new NotConfiguredError(`ARTIFACT_CATALOG.agent.sysext.${input.arch}`);
  const file = `/opt/extensions/flexnode-agent/flexnode-agent-${input.catalog.agent!.version}-${SYSEXT_ARCH[input.arch]}.raw`;
  return {
    variant: "flatcar",
    version: "1.0.0",
    storage: {
      files: [
        { path: file, mode: 0o644, contents: { source: image.url, verification: { hash: `sha256-${image.sha256}` } } },
        { path: "/etc/flexnode/agent.json", mode: 0o600, contents: { inline: agentJson } },
      ],
      links: [{ path: "/etc/extensions/flexnode-agent.raw", target: file, hard: false }],
    },
    systemd: {
      units: [
        { name: "flexnode-agent.service", enabled: true, dropins: [{ name: "10-enrol-first.conf", contents: ENROL_FIRST }] },
        { name: "flexnode-enrol.service", enabled: true, contents: ENROL_UNIT.replace("%BIN%", "/usr/bin/flexnode-agent") },
      ],
    },
  };
}

function executable(input: JoinInput): { url: string; sha256: string } {
  const exe = input.catalog.agent!.executable[input.arch];
  if (!exe) throw new NotConfiguredError(`ARTIFACT_CATALOG.agent.executable.${input.arch}`);
  return exe;
}

const BIN = "/opt/flexnode/bin/flexnode-agent";
const installCommands = (exe: { url: string; sha256: string }) => [
  "install -d -m 0755 /opt/flexnode/bin",
  `curl -fsSL --retry 5 -o ${BIN}.download '${exe.url}'`,
  `echo '${exe.sha256}  ${BIN}.download' | sha256sum -c -`,
  `install -m 0755 ${BIN}.download ${BIN}`,
  `rm -f ${BIN}.download`,
];

function cloudInit(input: JoinInput, agentJson: string): string {
  const config = {
    write_files: [
      { path: "/etc/flexnode/agent.json", permissions: "0600", owner: "root:root", content: agentJson },
      { path: "/etc/systemd/system/flexnode-agent.service", permissions: "0644", content: AGENT_UNIT },
      { path: "/etc/systemd/system/flexnode-enrol.service", permissions: "0644", content: ENROL_UNIT.replace("%BIN%", BIN) },
      { path: "/etc/systemd/system/flexnode-agent.service.d/10-enrol-first.conf", permissions: "0644", content: ENROL_FIRST },
    ],
    runcmd: [...installCommands(executable(input)), "systemctl daemon-reload", "systemctl enable --now flexnode-enrol.service flexnode-agent.service"],
  };
  return `#cloud-config\n${header("cloud-init user data for hosts with a writable /usr")}${YAML.stringify(config, { lineWidth: 0 })}`;
}

function shell(input: JoinInput, agentJson: string): string {
  const heredoc = (path: string, mode: string, text: string) =>
    `install -d -m 0755 ${path.replace(/\/[^/]+$/, "")}\ncat > ${path} <<'FLEXNODE_EOF'\n${text.replace(/\n$/, "")}\nFLEXNODE_EOF\nchmod ${mode} ${path}`;
  return [
    "#!/bin/sh",
    header("shell script for hosts with a writable /usr; run as root").trimEnd(),
    "set -eu",
    "umask 077",
    heredoc("/etc/flexnode/agent.json", "0600", agentJson),
    "umask 022",
    ...installCommands(executable(input)),
    heredoc("/etc/systemd/system/flexnode-agent.service", "0644", AGENT_UNIT),
    `${BIN} preflight`,
    `${BIN} enrol`,
    "systemctl daemon-reload",
    "systemctl enable --now flexnode-agent.service",
    "",
  ].join("\n");
}
