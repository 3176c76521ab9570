/**
 * Read-only views of the emulator's state for assertions such as "which managed resources exist now" or "which
 * grants were left behind", without going through ARM (and its throttling) to look.
 */
import type { Directory } from "./directory.js";
import type { Machines } from "./machines.js";
import type { ManagedClusters } from "./managed-clusters.js";
import type { AsyncOperation, Operations } from "./operations.js";
import type { RoleAssignments } from "./role-assignments.js";

export interface MachineView {
  id: string;
  name: string;
  location: string;
  principalId: string;
  tags: Record<string, string>;
  provisioningState: string;
  status: string | null;
}

export interface RoleAssignmentView {
  id: string;
  name: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType: string;
  /** The principal has been deleted (e.g. its machine is gone): the portal shows "Identity not found". */
  orphaned: boolean;
}

export interface ClusterView {
  id: string;
  name: string;
  fqdn: string;
  serverUrl: string;
  disableLocalAccounts: boolean;
}

export class Inspector {
  constructor(
    private readonly state: {
      machines: Machines;
      roleAssignments: RoleAssignments;
      clusters: ManagedClusters;
      operations: Operations;
      directory: Directory;
    },
  ) {}

  machines(): MachineView[] {
    return this.state.machines.list().map((m) => ({
      id: m.id,
      name: m.name,
      location: m.location,
      principalId: m.principalId,
      tags: { ...(m.tags ?? {}) },
      provisioningState: m.provisioningState,
      status: m.status,
    }));
  }

  roleAssignments(): RoleAssignmentView[] {
    return this.state.roleAssignments.list().map((ra) => {
      const rendered = this.state.roleAssignments.render(ra);
      const props = rendered["properties"] as { roleDefinitionId: string };
      return {
        id: ra.id,
        name: ra.name,
        scope: ra.scope,
        roleDefinitionId: props.roleDefinitionId,
        principalId: ra.principalId,
        principalType: ra.principalType,
        orphaned: this.state.directory.get(ra.principalId)?.deletedAt !== undefined,
      };
    });
  }

  clusters(): ClusterView[] {
    return this.state.clusters.list().map((c) => ({
      id: c.id,
      name: c.name,
      fqdn: c.fqdn,
      serverUrl: c.serverUrl,
      disableLocalAccounts: c.disableLocalAccounts,
    }));
  }

  pendingOperations(): AsyncOperation[] {
    return this.state.operations.pending();
  }

  /** Principal ids whose identity was deleted (with their machine). */
  deletedPrincipals(): string[] {
    return this.state.directory
      .list()
      .filter((p) => p.deletedAt !== undefined)
      .map((p) => p.id);
  }

  /**
   * Ids of existing resources carrying tag `key` (case-insensitive, as ARM tag names are) with `value` (exact), or
   * with any value when `value` is omitted.
   */
  resourcesTagged(key: string, value?: string): string[] {
    const wanted = key.toLowerCase();
    return this.state.machines
      .list()
      .filter((m) => Object.entries(m.tags ?? {}).some(([k, v]) => k.toLowerCase() === wanted && (value === undefined || v === value)))
      .map((m) => m.id);
  }

  /** Role assignments whose principal is one of the given ids (e.g. the identities of managed machines). */
  roleAssignmentsFor(principalId: string): RoleAssignmentView[] {
    return this.roleAssignments().filter((ra) => ra.principalId.toLowerCase() === principalId.toLowerCase());
  }
}
