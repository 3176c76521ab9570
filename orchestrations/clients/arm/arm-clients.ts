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
import type { HttpClient } from "@azure/core-rest-pipeline";

/** Stable api-versions the service pins, newest where the npm SDK allows (see README "Azure API versions"). */
export const API_VERSIONS = {
  /** Machine PUT/DELETE through the generic resources client: npm @azure/arm-hybridcompute 3.0.0 has no createOrUpdate. */
  hybridComputeMachines: "2025-01-13",
  containerService: "2025-10-01",
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
}

export class ArmClients {
  private readonly cache = new Map<string, unknown>();

  constructor(private readonly options: ArmClientsOptions) {}

  authorization(subscriptionId: string): AuthorizationManagementClient {
    return this.memo("authorization", subscriptionId, () => new AuthorizationManagementClient(this.options.credential, subscriptionId, this.common()));
  }

  resources(subscriptionId: string): ResourceManagementClient {
    return this.memo("resources", subscriptionId, () => new ResourceManagementClient(this.options.credential, subscriptionId, this.common()));
  }

  hybridCompute(subscriptionId: string): HybridComputeManagementClient {
    return this.memo("hybridCompute", subscriptionId, () => new HybridComputeManagementClient(this.options.credential, subscriptionId, this.common()));
  }

  containerService(subscriptionId: string): ContainerServiceClient {
    return this.memo(
      "containerService",
      subscriptionId,
      () => new ContainerServiceClient(this.options.credential, subscriptionId, { ...this.common(), apiVersion: API_VERSIONS.containerService }),
    );
  }

  private common() {
    const { endpoint, httpClient, tlsOptions, retryOptions } = this.options;
    return { endpoint, httpClient, tlsOptions, retryOptions };
  }

  private memo<T>(kind: string, subscriptionId: string, create: () => T): T {
    const key = `${kind}:${subscriptionId.toLowerCase()}`;
    let client = this.cache.get(key) as T | undefined;
    if (!client) {
      client = create();
      this.cache.set(key, client);
    }
    return client;
  }
}
