/**
 * What the service's use cases and activities are given: the long-lived clients, built once per process by the
 * composition root (functions/composition-root.ts) from the app settings. Tests and the local sandbox build the same
 * object with their own transports; nothing below reaches for a global.
 */
import type { KeyObject } from "node:crypto";
import type { TokenCredential } from "@azure/core-auth";
import type { ArmClients } from "./clients/arm/arm-clients.js";
import type { KubeAccess } from "./clients/kube/aks-access.js";
import type { LifecycleEvents } from "./clients/events/lifecycle-events.js";
import type { Mailbox } from "./clients/mailbox/mailbox.js";
import type { Registry } from "./clients/registry/registry.js";
import type { OneTimeSecrets } from "./clients/secrets/one-time-secrets.js";
import type { Settings } from "./settings.js";

export interface Services {
  settings: Settings;
  registry: Registry;
  now: () => Date;
  /** The node mailboxes; NotConfiguredError when Service Bus is not configured. */
  mailbox(): Mailbox;
  /** The key that signs step envelopes; NotConfiguredError when not configured. */
  signingKey(): KeyObject;
  secrets(): OneTimeSecrets;
  arm(): ArmClients;
  /** The service's Entra identity (managed identity in Azure), for tokens other than ARM's (the AKS server app). */
  credential(): TokenCredential;
  /** A Kubernetes API client for a cluster, with the service's access to it, and the server and CA nodes will use. */
  kube(clusterResourceId: string): Promise<KubeAccess>;
  /** Where lifecycle CloudEvents go: the Event Grid topic, or nowhere when none is configured. */
  events(): LifecycleEvents;
}

/** How triggers reach the services: resolved per invocation (the first call builds them and checks the tables). */
export type ServiceProvider = () => Promise<Services>;
