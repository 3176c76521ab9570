/**
 * Request/response over AMQP links, as `$cbs` and `$management` use it: the request's `reply_to` names the client's
 * receiving link (CBS: its link name; `$management`: link name and target address), and the response carries the
 * request's `message_id` as `correlation_id` and the status in both key spellings clients look for.
 */
import rhea, { type Message, type Sender } from "rhea";

const { types } = rhea;

export interface Response {
  status: number;
  description: string;
  /** AMQP error condition for failures, e.g. `com.microsoft:message-lock-lost`. */
  condition?: string;
  body?: unknown;
}

export class ReplyLinks {
  private readonly links = new Map<string, Sender>();

  register(sender: Sender): void {
    const names = [sender.name, sender.target?.address].filter((n): n is string => typeof n === "string" && n !== "");
    for (const name of names) this.links.set(name, sender);
    sender.on("sender_error", () => undefined);
    sender.on("sender_close", () => {
      for (const name of names) if (this.links.get(name) === sender) this.links.delete(name);
    });
  }

  /** False when no open link answers to `reply_to` (the client has gone; the service drops the response too). */
  reply(request: Message, response: Response): boolean {
    const replyTo = typeof request.reply_to === "string" ? request.reply_to : undefined;
    const link = replyTo === undefined ? undefined : this.links.get(replyTo);
    if (!link?.is_open()) return false;
    const properties: Record<string, unknown> = {
      statusCode: types.wrap_int(response.status),
      "status-code": types.wrap_int(response.status),
      statusDescription: response.description,
      "status-description": response.description,
    };
    if (response.condition !== undefined) properties["error-condition"] = response.condition;
    // rhea holds the transfer until the client grants credit, so no credit check is needed here.
    link.send({ correlation_id: request.message_id, to: replyTo, application_properties: properties, body: response.body ?? null });
    return true;
  }
}
