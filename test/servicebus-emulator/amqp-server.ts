/**
 * The AMQP side of the emulator: a rhea container that accepts connections handed over by the port listener, with
 * SASL ANONYMOUS (the SDK authenticates per link through CBS, not at the connection) and no auto-accept, so every
 * transfer is accepted or rejected by the broker.
 */
import type { Duplex } from "node:stream";
import rhea, { type Connection, type ConnectionOptions } from "rhea";
import { AmqpConnection, type AmqpEnvironment } from "./amqp-connection.js";

export class AmqpServer {
  private readonly container = rhea.create_container({ id: "servicebus-emulator" });
  private readonly connections = new Set<AmqpConnection>();
  private nextId = 1;

  constructor(private readonly env: AmqpEnvironment) {
    (this.container.sasl_server_mechanisms as { enable_anonymous(): void }).enable_anonymous();
    // rhea reports here both link errors no handler claimed (the peer's business) and exceptions thrown by our
    // handlers (an emulator bug, which would otherwise show up only as an SDK timeout): log both, shout about bugs.
    this.container.on("error", (error: unknown) => {
      const isLinkError = typeof error === "object" && error !== null && "link" in error;
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.env.context.log.append({ kind: "error", source: isLinkError ? "peer" : "emulator", message });
      if (!isLinkError) console.error(`servicebus-emulator: internal error: ${message}`);
    });
  }

  accept(stream: Duplex): void {
    const id = `connection-${this.nextId++}`;
    const options = { id, container_id: "servicebus-emulator", autoaccept: false } as unknown as ConnectionOptions;
    const connection = this.container.create_connection(options);
    const handler = new AmqpConnection(id, connection, this.env, () => this.connections.delete(handler));
    this.connections.add(handler);
    (connection as Connection & { accept(socket: Duplex): void }).accept(stream);
  }

  expireClaims(nowMs: number): void {
    for (const connection of [...this.connections]) connection.expireClaims(nowMs);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  closeAll(): void {
    for (const connection of [...this.connections]) connection.close();
  }
}
