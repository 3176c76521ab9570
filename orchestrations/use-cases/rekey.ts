/**
 * An admin gives a node a new public key: the one way a key moves other than a node enrolling with its own. For a
 * re-imaged host whose pool refuses clones, or a key that must be replaced. The new key must not act for another live
 * node (KeyInUse); from a retired one (Failed, Offboarded) an admin may take it. The old key stops acting for the node
 * at once; the change is audited with both key ids. Onboarding is not restarted: a failed or offboarded node then
 * enrols again with the new key, a live one carries on with it.
 */
import { keyIdOf } from "../../contract/keys.js";
import type { NodeRecord } from "../clients/registry/model.js";
import { RegistryError, type Registry } from "../clients/registry/registry.js";

export async function rekeyNode(deps: { registry: Registry }, nodeId: string, publicKey: string, actor: string): Promise<NodeRecord> {
  const node = await deps.registry.nodes.get(nodeId);
  if (!node) throw new RegistryError("NodeNotFound", `node '${nodeId}' does not exist`);
  const keyId = keyIdOf(publicKey);
  return deps.registry.nodes.update(
    node,
    (n) =>
      n.keyId === keyId
        ? undefined
        : {
            publicKey,
            keyId,
            // A claim by this very key is settled by the re-key; another claim keeps waiting.
            pendingClaim: n.pendingClaim?.keyId === keyId ? undefined : n.pendingClaim,
          },
    actor,
    "node.rekey-admin",
    { takeKeyFromRetired: true },
  );
}
