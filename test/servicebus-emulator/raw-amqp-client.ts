/**
 * Test support: a bare AMQP client (rhea) for what the SDK never does on its own: put a token for the namespace
 * root, or renew a link's token on demand (the SDK does it on a fixed 45-minute timer).
 */
import { randomUUID } from "node:crypto";
import rhea, { type AmqpError, type Connection, type ConnectionOptions, type EventContext, type Message, type Receiver } from "rhea";

const TIMEOUT_MS = 5000;

export interface PutTokenResult {
  status: number;
  description: string;
}

export interface RawReceiver {
  receiver: Receiver;
  /** Resolves when the emulator detaches the link (with its error) or the link is closed. */
  closed: Promise<AmqpError | undefined>;
  /** Grants one credit and resolves with the next message. */
  next(): Promise<Message>;
}

export class RawAmqpClient {
  private readonly replyTo = `cbs-${randomUUID()}`;
  private readonly responses = new Map<string, (message: Message) => void>();

  private constructor(private readonly connection: Connection) {}

  static async connect(host: string, port: number): Promise<RawAmqpClient> {
    const container = rhea.create_container({ id: `raw-${randomUUID()}` });
    const connection = container.connect({ host, port, reconnect: false } as ConnectionOptions);
    await within(
      new Promise<void>((resolve, reject) => {
        connection.once("connection_open", () => resolve());
        connection.once("connection_error", (context: EventContext) => reject(new Error(String(context.connection.error))));
        connection.once("disconnected", () => reject(new Error("disconnected")));
      }),
      "connection open",
    );
    const client = new RawAmqpClient(connection);
    await client.openCbs();
    return client;
  }

  async putToken(audience: string, token: string): Promise<PutTokenResult> {
    const messageId = randomUUID();
    const response = within(new Promise<Message>((resolve) => this.responses.set(messageId, resolve)), "put-token response");
    this.connection
      .find_sender((s: { target?: { address?: string } }) => s.target?.address === "$cbs")
      ?.send({
        message_id: messageId,
        reply_to: this.replyTo,
        application_properties: { operation: "put-token", name: audience, type: "servicebus.windows.net:sastoken" },
        body: token,
      });
    const message = await response;
    const props = (message.application_properties ?? {}) as Record<string, unknown>;
    return { status: Number(props["status-code"]), description: String(props["status-description"]) };
  }

  async openReceiver(address: string): Promise<RawReceiver> {
    const receiver = this.connection.open_receiver({ source: { address }, credit_window: 0, autoaccept: true });
    const closed = new Promise<AmqpError | undefined>((resolve) => {
      receiver.once("receiver_close", (context: EventContext) => resolve(context.receiver?.error as AmqpError | undefined));
    });
    receiver.on("receiver_error", () => undefined);
    await within(new Promise<void>((resolve) => receiver.once("receiver_open", () => resolve())), `attach ${address}`);
    return {
      receiver,
      closed,
      next: () => {
        const message = within(
          new Promise<Message>((resolve) => receiver.once("message", (context: EventContext) => resolve(context.message!))),
          `message on ${address}`,
        );
        receiver.add_credit(1);
        return message;
      },
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.connection.is_open()) return resolve();
      this.connection.once("connection_close", () => resolve());
      this.connection.once("disconnected", () => resolve());
      this.connection.close();
    });
  }

  private async openCbs(): Promise<void> {
    const sender = this.connection.open_sender({ target: { address: "$cbs" } });
    const receiver = this.connection.open_receiver({ source: { address: "$cbs" }, name: this.replyTo, credit_window: 10 });
    receiver.on("message", (context: EventContext) => {
      const id = String(context.message?.correlation_id);
      this.responses.get(id)?.(context.message!);
      this.responses.delete(id);
    });
    await within(
      Promise.all([
        new Promise<void>((resolve) => sender.once("sendable", () => resolve())),
        new Promise<void>((resolve) => receiver.once("receiver_open", () => resolve())),
      ]),
      "CBS links",
    );
  }
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
