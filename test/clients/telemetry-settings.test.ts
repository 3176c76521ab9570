/** Which exporter the settings choose (orchestrations/observability/telemetry.ts), and the ARM throttle counter's resource types. */
import { describe, expect, it } from "vitest";
import { resourceTypeOf } from "../../orchestrations/observability/arm-throttles.js";
import { telemetryModeOf } from "../../orchestrations/observability/telemetry.js";

const AI = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/";

describe("telemetry mode", () => {
  it("is off unless a setting asks for an exporter; empty counts as unset", () => {
    expect(telemetryModeOf({})).toBe("off");
    expect(telemetryModeOf({ FLEXNODE_TELEMETRY: "", OTEL_EXPORTER_OTLP_ENDPOINT: "", APPLICATIONINSIGHTS_CONNECTION_STRING: "" })).toBe("off");
  });

  it("prefers Azure Monitor, then OTLP, then the console", () => {
    expect(
      telemetryModeOf({ APPLICATIONINSIGHTS_CONNECTION_STRING: AI, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", FLEXNODE_TELEMETRY: "console" }),
    ).toBe("azure-monitor");
    expect(telemetryModeOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", FLEXNODE_TELEMETRY: "console" })).toBe("otlp");
    expect(telemetryModeOf({ FLEXNODE_TELEMETRY: "console" })).toBe("console");
  });

  it("stays off on a malformed setting rather than stopping the app", () => {
    expect(telemetryModeOf({ FLEXNODE_TELEMETRY: "loud" })).toBe("off");
    expect(telemetryModeOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toBe("off");
    expect(telemetryModeOf({ APPLICATIONINSIGHTS_CONNECTION_STRING: "not one" })).toBe("off");
  });
});

describe("ARM throttle counter", () => {
  it("names the resource type, not the resource, so the metric stays small", () => {
    const sub = "https://management.azure.com/subscriptions/s/resourceGroups/rg";
    expect(resourceTypeOf(`${sub}/providers/Microsoft.HybridCompute/machines/fn-1?api-version=2025-01-13`)).toBe("Microsoft.HybridCompute/machines");
    expect(resourceTypeOf(`${sub}/providers/Microsoft.ContainerService/managedClusters/c/providers/Microsoft.Authorization/roleAssignments/g`)).toBe(
      "Microsoft.Authorization/roleAssignments",
    );
    expect(resourceTypeOf(`${sub}/providers/Microsoft.ContainerService/managedClusters/c/listClusterUserCredential`)).toBe(
      "Microsoft.ContainerService/managedClusters/listClusterUserCredential",
    );
    expect(resourceTypeOf(`${sub}`)).toBe("unknown");
  });
});
