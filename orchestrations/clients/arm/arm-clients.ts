/**
 * The Azure Resource Manager clients the activities use, built once per process from one set of options and cached
 * per subscription (pools may target clusters in different subscriptions). Tests and the local sandbox pass the ARM
 * emulator's `httpClient` or its HTTPS endpoint + CA here; production passes only a credential.
 */
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { ContainerServiceClient } from "@azure/arm-containerservice";
import { HybridComputeManagementClient } from "@azure/arm-hybridcompute";
import { ResourceManagementClient } from "@azure/arm-resources";
import type { TokenCredential } from "@azure/core-auth";
import type { HttpClient, Pipeline, PipelinePolicy } from "@azure/core-rest-pipeline";
import { ARC_MACHINES, MANAGED_CLUSTERS, ROLE_ASSIGNMENTS } from "./resource-id.js";
import { armThrottleCounter } from "../../observability/arm-throttles.js";
import type { ArmPacer } from "./write-pacer.js";

/**
 * The one api-version per resource type the service calls (README "Azure API versions"): every client and every
 * `*ById` call takes its version from here, so a resource type is never read at one version and written at another.
 * Each must be one Azure publishes for the type (the ARM emulator refuses any other, as ARM does).
 */
export const API_VERSIONS = {
  /** Machines through the generic resources client (npm @azure/arm-hybridcompute 3.0.0 has no createOrUpdate) and the sweeper's listing. */
  [ARC_MACHINES]: "2025-01-13",
  [MANAGED_CLUSTERS]: "2025-10-01",
  /** Not configurable: @azure/arm-authorization 9 sends this for role assignments; listed so tests hold the SDK to it. */
  [ROLE_ASSIGNMENTS]: "2022-04-01",
} as const;

export interface ArmClientsOptions {
  credential: TokenCredential;
  /** ARM endpoint; defaults to public Azure. */
  endpoint?: string;
  /** In-process transport (tests): no socket, the URL stays the public one. */
  httpClient?: HttpClient;
  /** Extra trust for a self-signed endpoint (the emulator over HTTPS). */
  tlsOptions?: { ca?: string };
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  /** Paces every request of every client against ARM's buckets (write-pacer.ts); one per process. None: unpaced. */
  pacer?: ArmPacer;
}

export class ArmClients {
  private readonly cache = new Map<string, unknown>();

  constructor(private readonly options: ArmClientsOptions) {}

  /**
   * Takes the pacer's token for a write about to be made to `resourceId` (or throws its paced 429): for an activity
   * that records what it is about to create first, so a paced attempt costs no registry write. No pacer: nothing.
   */
  async reserveWrite(method: "PUT" | "PATCH" | "POST", resourceId: string): Promise<void> {
    await this.options.pacer?.reserve(method, resourceId);
  }

  /** Where requests go (raw requests build their URLs on it); public Azure unless configured. */
  get endpoint(): string {
    return this.options.endpoint ?? "https://management.azure.com";
  }

  authorization(subscriptionId: string): AuthorizationManagementClient {
    return this.memo("authorization", subscriptionId, () => new AuthorizationManagementClient(this.options.credential, subscriptionId, this.common()));
  }

  resources(subscriptionId: string): ResourceManagementClient {
    return this.memo("resources", subscriptionId, () => new ResourceManagementClient(this.options.credential, subscriptionId, this.common()));
  }

  hybridCompute(subscriptionId: string): HybridComputeManagementClient {
    return this.memo(
      "hybridCompute",
      subscriptionId,
      () =>
        new HybridComputeManagementClient(this.options.credential, subscriptionId, {
          ...this.common(),
          additionalPolicies: [...this.common().additionalPolicies, { policy: pinApiVersion(API_VERSIONS[ARC_MACHINES]), position: "perCall" }],
        }),
    );
  }

  containerService(subscriptionId: string): ContainerServiceClient {
    return this.memo(
      "containerService",
      subscriptionId,
      () => new ContainerServiceClient(this.options.credential, subscriptionId, { ...this.common(), apiVersion: API_VERSIONS[MANAGED_CLUSTERS] }),
    );
  }

  private common() {
    const { endpoint, httpClient, tlsOptions, retryOptions, pacer } = this.options;
    return { endpoint, httpClient, tlsOptions, retryOptions, additionalPolicies: pacer?.policies() ?? [] };
  }

  private memo<T>(kind: string, subscriptionId: string, create: () => T): T {
    const key = `${kind}:${subscriptionId.toLowerCase()}`;
    let client = this.cache.get(key) as T | undefined;
    if (!client) {
      client = create();
      (client as { pipeline: Pipeline }).pipeline.addPolicy(armThrottleCounter(), { afterPhase: "Retry" });
      this.cache.set(key, client);
    }
    return client;
  }
}

/**
 * @azure/arm-hybridcompute 3.0.0 declares its api-version (2021-05-20) a constant and ignores the `apiVersion` option,
 * so the machine listing would be read at another version than the machines are written; this sets the table's.
 */
function pinApiVersion(version: string): PipelinePolicy {
  return {
    name: "pinApiVersion",
    sendRequest: (request, next) => {
      request.url = request.url.replace(/([?&]api-version=)[^&#]*/i, `$1${encodeURIComponent(version)}`);
      return next(request);
    },
  };
}
