import { describe, expect, it } from "vitest";
import {
  machineIdIn,
  parseClusterId,
  parseMachineId,
  parseResourceGroupId,
  parseResourceId,
  ResourceIdError,
  subscriptionOf,
} from "../../orchestrations/clients/arm/resource-id.js";

const SUB = "00000000-0000-4000-8000-000000000001";
const CLUSTER = `/subscriptions/${SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1`;
const MACHINE = `/subscriptions/${SUB}/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/fn-0123456789abcdef01234567`;

describe("resource ids: one parser", () => {
  it("reads the parts of a cluster id, a machine id and a resource group id", () => {
    expect(parseClusterId(CLUSTER)).toEqual({
      subscriptionId: SUB,
      resourceGroup: "rg-aks",
      type: "Microsoft.ContainerService/managedClusters",
      name: "aks-1",
    });
    expect(parseMachineId(MACHINE).name).toBe("fn-0123456789abcdef01234567");
    expect(parseResourceGroupId(`/subscriptions/${SUB}/resourceGroups/rg-arc`)).toEqual({ subscriptionId: SUB, resourceGroup: "rg-arc" });
    expect(machineIdIn(`/subscriptions/${SUB}/resourceGroups/rg-arc`, "fn-0123456789abcdef01234567")).toBe(MACHINE);
  });

  it("compares types case-insensitively, as ARM does, and keeps the id's own spelling", () => {
    const lower = CLUSTER.replace("Microsoft.ContainerService/managedClusters", "microsoft.containerservice/MANAGEDCLUSTERS");
    expect(parseClusterId(lower).type).toBe("microsoft.containerservice/MANAGEDCLUSTERS");
  });

  it("finds the subscription of any id under one, role assignments at a scope included", () => {
    expect(subscriptionOf(`${MACHINE}/providers/Microsoft.Authorization/roleAssignments/abc`)).toBe(SUB);
    expect(subscriptionOf(`/subscriptions/${SUB}`)).toBe(SUB);
  });

  it.each([
    ["a machine id as a cluster", () => parseClusterId(MACHINE), "a Microsoft.ContainerService/managedClusters id"],
    ["a child resource as a machine", () => parseMachineId(`${MACHINE}/extensions/x`), "a Microsoft.HybridCompute/machines id"],
    ["a resource as a resource group", () => parseResourceGroupId(MACHINE), "a resource group id"],
    ["a tenant-level id", () => subscriptionOf("/providers/Microsoft.Management/managementGroups/mg"), "an id under a subscription"],
    ["a relative id", () => parseResourceId(MACHINE.slice(1), "Microsoft.HybridCompute/machines"), "a Microsoft.HybridCompute/machines id"],
  ])("refuses %s with a named error", (_what, parse, expected) => {
    expect(parse).toThrow(ResourceIdError);
    try {
      parse();
    } catch (error) {
      expect(error).toMatchObject({ name: "ResourceIdError", expected });
    }
  });
});
