/**
 * The kubeconfig a node's kubelet starts from (`--bootstrap-kubeconfig`): the cluster's server and CA inline, and the
 * bootstrap token as a static token user. It is a secret (it holds the token): hand it to the node as a one-time
 * secret, never through saga history or queue messages.
 */
import { stringify } from "yaml";
import { BOOTSTRAP_TOKEN_PATTERN } from "./bootstrap-token.js";

const USER = "kubelet-bootstrap";

export function bootstrapKubeconfig(options: { server: string; caPem: string; token: string; clusterName: string }): string {
  if (new URL(options.server).protocol !== "https:") throw new RangeError("the bootstrap kubeconfig needs an https server");
  if (!options.caPem.includes("-----BEGIN CERTIFICATE-----")) throw new RangeError("caPem is not a PEM certificate");
  if (!BOOTSTRAP_TOKEN_PATTERN.test(options.token)) throw new RangeError("token is not a bootstrap token (<id>.<secret>)");
  if (options.clusterName === "") throw new RangeError("clusterName is empty");
  const context = `${USER}@${options.clusterName}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: options.clusterName, cluster: { server: options.server, "certificate-authority-data": Buffer.from(options.caPem, "utf8").toString("base64") } },
    ],
    users: [{ name: USER, user: { token: options.token } }],
    contexts: [{ name: context, context: { cluster: options.clusterName, user: USER } }],
    "current-context": context,
  });
}
