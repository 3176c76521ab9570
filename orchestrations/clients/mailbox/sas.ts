/**
 * Service Bus shared access signatures: `SharedAccessSignature sr=<uri>&sig=<HMAC-SHA256(key, uri + "\n" + expiry)>
 * &se=<expiry>&skn=<rule>`. The rule (a namespace-level authorization rule) decides the rights (Listen or Send); the
 * resource URI `sr` narrows them to one entity. Minting needs the rule's key, never the node.
 */
import { createHmac } from "node:crypto";

export interface SasOptions {
  /** e.g. `sb://ns.servicebus.windows.net/node-fn-…` */
  resourceUri: string;
  keyName: string;
  key: string;
  expiresAt: Date;
}

export function mintSas(options: SasOptions): string {
  const sr = encodeURIComponent(options.resourceUri);
  const se = Math.floor(options.expiresAt.getTime() / 1000);
  const sig = encodeURIComponent(createHmac("sha256", options.key).update(`${sr}\n${se}`, "utf8").digest("base64"));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${encodeURIComponent(options.keyName)}`;
}
