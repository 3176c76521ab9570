/** Shared builders for registry and enrolment tests: a registry on fresh tables in Azurite, and sample inputs. */
import { randomBytes, randomUUID } from "node:crypto";
import { createDefaultHttpClient, type HttpClient } from "@azure/core-rest-pipeline";
import { inject } from "vitest";
import { PoolSpec, type NodeFacts } from "../../orchestrations/clients/registry/model.js";
import { Registry } from "../../orchestrations/clients/registry/registry.js";

export const SUBSCRIPTION = "00000000-0000-4000-8000-000000000001";
export const CLUSTER_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1`;
export const ARC_RG = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-arc`;

/** A table-name prefix unique to one test, so tests share Azurite without seeing each other's rows. */
export const uniquePrefix = (): string => `t${randomBytes(5).toString("hex")}`;

export async function freshRegistry(now: () => Date = () => new Date()): Promise<{ registry: Registry; prefix: string }> {
  const prefix = uniquePrefix();
  const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix }, now);
  await registry.ensureTables();
  return { registry, prefix };
}

/** A registry on fresh tables whose every request is recorded in `sent` ("METHOD url", the url decoded). */
export async function recordingRegistry(): Promise<{ registry: Registry; sent: string[]; prefix: string }> {
  const sent: string[] = [];
  const transport = createDefaultHttpClient();
  const httpClient: HttpClient = {
    sendRequest: (request) => (sent.push(`${request.method} ${decodeURIComponent(request.url)}`), transport.sendRequest(request)),
  };
  const prefix = uniquePrefix();
  const registry = new Registry({ connectionString: inject("azuriteConnectionString"), prefix, httpClient });
  await registry.ensureTables();
  return { registry, sent, prefix };
}

export function poolSpec(overrides: Partial<Record<keyof PoolSpec, unknown>> = {}): PoolSpec {
  return PoolSpec.parse({ clusterResourceId: CLUSTER_ID, arc: { resourceGroupId: ARC_RG, location: "eastus" }, ...overrides });
}

export function facts(overrides: Partial<NodeFacts> = {}): NodeFacts {
  return {
    hostname: "edge-01",
    machineId: randomBytes(16).toString("hex"),
    smbiosUuid: randomUUID(),
    osRelease: { id: "flatcar", versionId: "4081.2.0" },
    arch: "amd64",
    kernel: "6.6.54-flatcar",
    cpus: 4,
    memoryBytes: 8 * 1024 ** 3,
    addresses: ["192.0.2.10"],
    immutable: { readOnlyUsr: true, ostree: false, flatcar: true, kairos: false, bootc: false },
    ...overrides,
  };
}

/** A new node as enrolment creates it (NodeTable.create's input). */
export function newNodeInput(pool: string, nodeId: string, status: "Enrolling" | "AwaitingApproval" = "Enrolling") {
  const f = facts();
  return {
    nodeId,
    pool,
    status,
    facts: f,
    publicKey: "k".repeat(43),
    keyId: `kid-${nodeId}`,
    fingerprint: { machineId: f.machineId, smbiosUuid: f.smbiosUuid },
    tokenId: "0123456789abcdef",
    labels: {},
    taints: [],
    createdObjects: [],
  };
}
