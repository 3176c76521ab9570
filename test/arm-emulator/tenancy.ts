/** Subscriptions and resource groups: fixtures that ARM requires to exist before anything can be put in them. */
import { armErrors } from "./arm-error.js";

export interface ResourceGroup {
  subscriptionId: string;
  name: string;
  location: string;
}

export class Tenancy {
  private readonly subscriptions = new Map<string, string>();
  private readonly groups = new Map<string, ResourceGroup>();

  addSubscription(subscriptionId: string): string {
    const key = subscriptionId.toLowerCase();
    const existing = this.subscriptions.get(key);
    if (existing !== undefined) return existing;
    this.subscriptions.set(key, subscriptionId);
    return subscriptionId;
  }

  addResourceGroup(subscriptionId: string, name: string, location = "eastus"): ResourceGroup {
    const sub = this.addSubscription(subscriptionId);
    const key = groupKey(sub, name);
    const existing = this.groups.get(key);
    if (existing) return existing;
    const group: ResourceGroup = { subscriptionId: sub, name, location };
    this.groups.set(key, group);
    return group;
  }

  /** Canonical subscription id, or the 404 ARM answers for an unknown subscription. */
  requireSubscription(subscriptionId: string): string {
    const sub = this.subscriptions.get(subscriptionId.toLowerCase());
    if (sub === undefined) throw armErrors.subscriptionNotFound(subscriptionId);
    return sub;
  }

  requireResourceGroup(subscriptionId: string, name: string): ResourceGroup {
    const sub = this.requireSubscription(subscriptionId);
    const group = this.groups.get(groupKey(sub, name));
    if (!group) throw armErrors.resourceGroupNotFound(name);
    return group;
  }

  findResourceGroup(subscriptionId: string, name: string): ResourceGroup | undefined {
    return this.groups.get(groupKey(subscriptionId, name));
  }

  resourceGroups(): ResourceGroup[] {
    return [...this.groups.values()];
  }
}

function groupKey(subscriptionId: string, name: string): string {
  return `${subscriptionId.toLowerCase()}/${name.toLowerCase()}`;
}
