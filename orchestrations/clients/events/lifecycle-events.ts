/**
 * Publishes lifecycle CloudEvents to the Event Grid topic with `@azure/eventgrid` (the CloudEvent schema; the service's
 * identity, role EventGrid Data Sender). Without a topic configured, events are dropped: a deployment that has no
 * consumer pays nothing for them.
 */
import type { TokenCredential } from "@azure/core-auth";
import { EventGridPublisherClient, type SendCloudEventInput } from "@azure/eventgrid";
import type { LifecycleCloudEvent } from "../../../contract/lifecycle-events.js";

export interface LifecycleEvents {
  publish(events: LifecycleCloudEvent[]): Promise<void>;
}

export function eventGridLifecycleEvents(o: { endpoint: string; credential: TokenCredential; tlsOptions?: { ca?: string } }): LifecycleEvents {
  const client = new EventGridPublisherClient(o.endpoint, "CloudEvent", o.credential, o.tlsOptions ? { tlsOptions: o.tlsOptions } : {});
  return {
    publish: async (events) => {
      const input: SendCloudEventInput<unknown>[] = events.map((e) => ({
        id: e.id,
        source: e.source,
        type: e.type,
        subject: e.subject,
        time: new Date(e.time),
        datacontenttype: e.datacontenttype,
        dataschema: e.dataschema,
        data: e.data,
      }));
      await client.send(input);
    },
  };
}

export const droppedLifecycleEvents: LifecycleEvents = { publish: () => Promise.resolve() };
