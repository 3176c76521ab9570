/** Resource group GET and PUT, so generic clients (and the local sandbox) can see and create groups. */
import { z } from "zod";
import { ArmError } from "./arm-error.js";
import type { RequestContext, Route } from "./router.js";
import type { ResourceGroup, Tenancy } from "./tenancy.js";
import type { HandlerResult } from "./wire.js";

const putBody = z.looseObject({ location: z.string().min(1) });

export class ResourceGroups {
  constructor(private readonly tenancy: Tenancy) {}

  routes(): Route[] {
    const one = /^\/subscriptions\/(?<sub>[^/]+)\/resourceGroups\/(?<rg>[^/]+)$/i;
    return [
      { name: "resourceGroups.get", method: "GET", pattern: one, handle: (ctx) => this.get(ctx) },
      { name: "resourceGroups.put", method: "PUT", pattern: one, handle: (ctx) => this.put(ctx) },
    ];
  }

  private get(ctx: RequestContext): HandlerResult {
    return { status: 200, body: render(this.tenancy.requireResourceGroup(ctx.params["sub"]!, ctx.params["rg"]!)) };
  }

  private put(ctx: RequestContext): HandlerResult {
    const sub = this.tenancy.requireSubscription(ctx.params["sub"]!);
    const parsed = putBody.safeParse(ctx.body ?? {});
    if (!parsed.success) throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
    const existed = this.tenancy.findResourceGroup(sub, ctx.params["rg"]!);
    const group = this.tenancy.addResourceGroup(sub, ctx.params["rg"]!, parsed.data.location);
    return { status: existed ? 200 : 201, body: render(group) };
  }
}

function render(group: ResourceGroup): Record<string, unknown> {
  return {
    id: `/subscriptions/${group.subscriptionId}/resourceGroups/${group.name}`,
    name: group.name,
    type: "Microsoft.Resources/resourceGroups",
    location: group.location,
    properties: { provisioningState: "Succeeded" },
  };
}
