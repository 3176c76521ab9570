/**
 * How a container with its own network namespace reaches the sandbox, which listens on the host's 127.0.0.1 only.
 *
 * The container runs with `--private-network` (only its own loopback), so the plan's net.* sysctls land in its
 * namespace and never on the host, and preflight's port 10250 is its own. The sandbox's URLs all say
 * `127.0.0.1:<port>` (the enrolment URL, the Service Bus namespace, the API server, the artifact mirror), and the
 * agent accepts plain http only for loopback, so inside the container the same addresses must answer. Unix sockets
 * are not network-namespaced: per port, the host listens on `<dir>/<port>.sock` and forwards to 127.0.0.1:<port>;
 * inside, a socket unit listens on 127.0.0.1:<port> and `systemd-socket-proxyd` (part of systemd) forwards each
 * connection to the socket file, which the container sees through a bind mount at /run/flexnode-bridge. TLS and
 * AMQP pass through untouched. Nothing changes on the host's network: no interface, no route, no netfilter rule,
 * no sysctl.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

export const BRIDGE_MOUNT = "/run/flexnode-bridge";
const PROXYD = "/usr/lib/systemd/systemd-socket-proxyd";

export interface PortBridge {
  dir: string;
  ports: readonly number[];
  /** Connections forwarded per port. */
  readonly connections: Map<number, number>;
  /** Unit files (socket + service per port) for the container's /run/systemd/system. */
  units: { name: string; text: string }[];
  close(): Promise<void>;
}

export async function startPortBridge(dir: string, ports: readonly number[]): Promise<PortBridge> {
  await mkdir(dir, { recursive: true });
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const connections = new Map<number, number>();
  for (const port of ports) {
    const path = join(dir, `${port}.sock`);
    await rm(path, { force: true });
    const server = createServer((inside) => {
      connections.set(port, (connections.get(port) ?? 0) + 1);
      const outside = connect({ host: "127.0.0.1", port });
      for (const s of [inside, outside]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => {
          inside.destroy();
          outside.destroy();
        });
      }
      inside.pipe(outside);
      outside.pipe(inside);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    servers.push(server);
  }
  const units = ports.flatMap((port) => [
    {
      name: `flexnode-bridge-${port}.socket`,
      text: `[Unit]\nDescription=flexnode test bridge: 127.0.0.1:${port} to the host's sandbox\n\n[Socket]\nListenStream=127.0.0.1:${port}\n`,
    },
    {
      name: `flexnode-bridge-${port}.service`,
      text: `[Unit]\nDescription=flexnode test bridge: 127.0.0.1:${port} to the host's sandbox\nRequires=flexnode-bridge-${port}.socket\nAfter=flexnode-bridge-${port}.socket\n\n[Service]\nExecStart=${PROXYD} ${BRIDGE_MOUNT}/${port}.sock\n`,
    },
  ]);
  await mkdir(join(dir, "units"), { recursive: true });
  for (const unit of units) await writeFile(join(dir, "units", unit.name), unit.text);
  return {
    dir,
    ports,
    connections,
    units,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

/** Shell run inside the booted container to start the bridge's socket units. */
export function bridgeStartScript(bridge: PortBridge): string {
  const sockets = bridge.units.filter((u) => u.name.endsWith(".socket")).map((u) => u.name);
  return `set -e\ncp ${BRIDGE_MOUNT}/units/* /run/systemd/system/\nsystemctl daemon-reload\nsystemctl start ${sockets.join(" ")}\n`;
}
