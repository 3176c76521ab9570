/**
 * One TCP port for everything a connection string points at. The SDK's AMQP client speaks plain AMQP to it under
 * `UseDevelopmentEmulator=true` and TLS otherwise; the administration client always calls `https://<Endpoint host:port>/`,
 * the same port. So each connection is told apart by its first bytes: `AMQP` header, TLS ClientHello (then the first
 * decrypted bytes decide between AMQP and HTTP), or plain HTTP.
 */
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";

export interface ConnectionHandlers {
  amqp(stream: Duplex): void;
  http(stream: Duplex): void;
}

const AMQP_HEADER_FIRST_BYTE = 0x41; // "A" of "AMQP"
const TLS_HANDSHAKE = 0x16;

export class PortListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly handlers: ConnectionHandlers,
    private readonly secureContext: tls.SecureContext,
  ) {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => socket.destroy());
      this.route(socket, true);
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting and destroys every open connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private route(stream: Duplex, tlsAllowed: boolean): void {
    stream.once("data", (head: Buffer) => {
      stream.pause();
      const replayed = withReplay(stream, head);
      if (head[0] === AMQP_HEADER_FIRST_BYTE) this.handlers.amqp(replayed);
      else if (head[0] === TLS_HANDSHAKE && tlsAllowed) this.startTls(replayed);
      else this.handlers.http(replayed);
    });
  }

  private startTls(stream: Duplex): void {
    const secure = new tls.TLSSocket(stream, { isServer: true, secureContext: this.secureContext });
    secure.on("error", () => {
      secure.destroy();
      stream.destroy();
    });
    secure.once("secure", () => this.route(secure, false));
  }
}

/**
 * The stream with `head` (already read to sniff the protocol) put back in front. A plain Duplex rather than
 * `socket.unshift`, because TLS and HTTP servers read a net.Socket's handle directly and would miss unshifted bytes.
 */
function withReplay(source: Duplex, head: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      source.resume();
    },
    write(chunk: Buffer, encoding, callback) {
      source.write(chunk, encoding, callback);
    },
    final(callback) {
      source.end();
      callback();
    },
    destroy(error, callback) {
      source.destroy(error ?? undefined);
      callback(error);
    },
  });
  stream.push(head);
  source.on("data", (chunk: Buffer) => {
    if (!stream.push(chunk)) source.pause();
  });
  source.on("end", () => stream.push(null));
  source.on("error", (error) => stream.destroy(error));
  source.on("close", () => stream.destroy());
  return stream;
}
