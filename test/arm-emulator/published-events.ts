/**
 * Event Grid resource events as Azure documents them, for feeding the service exactly what a subscription delivers.
 * Source: MicrosoftDocs/azure-docs `articles/event-grid/event-schema-resource-groups.md` (Event Grid schema at commit
 * 031f9b5a15cd8276984bca9449e1cfc55dc201a3; the "Cloud event schema" tab of the same article in the current
 * localised copies). The documented samples are for a storage account; `documentedResourceEvent` keeps every field and
 * value of the sample and substitutes only the resource (subject, scope, resourceUri, action, operationName, url,
 * resourceProvider) and the caller's object id. No real Arc capture is published (docs/reference §5.2).
 */
import type { ResourceEvent } from "./event-grid.js";

export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  subject: string;
  type: string;
  time: string;
  data: unknown;
}

/** The same event as a CloudEvents 1.0 subscription delivers it: `source` is the topic, the data is unchanged. */
export function toCloudEvent(event: Pick<ResourceEvent, "id" | "topic" | "subject" | "eventTime"> & { eventType: string; data: unknown }): CloudEvent {
  return { specversion: "1.0", id: event.id, source: event.topic, subject: event.subject, type: event.eventType, time: event.eventTime, data: event.data };
}

const CLAIMS = (oid: string) => ({
  aud: "{audience-claim}",
  iss: "{issuer-claim}",
  iat: "{issued-at-claim}",
  nbf: "{not-before-claim}",
  exp: "{expiration-claim}",
  _claim_names: '{"groups":"src1"}',
  _claim_sources: '{"src1":{"endpoint":"{URI}"}}',
  "http://schemas.microsoft.com/claims/authnclassreference": "1",
  aio: "{token}",
  "http://schemas.microsoft.com/claims/authnmethodsreferences": "rsa,mfa",
  appid: "{ID}",
  appidacr: "2",
  "http://schemas.microsoft.com/2012/01/devicecontext/claims/identifier": "{ID}",
  e_exp: "262800",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": "{last-name}",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": "{first-name}",
  ipaddr: "{IP-address}",
  name: "{full-name}",
  "http://schemas.microsoft.com/identity/claims/objectidentifier": oid,
  onprem_sid: "{ID}",
  puid: "{ID}",
  "http://schemas.microsoft.com/identity/claims/scope": "user_impersonation",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": "{ID}",
  "http://schemas.microsoft.com/identity/claims/tenantid": "{ID}",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": "{user-name}",
  "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "{user-name}",
  uti: "{ID}",
  ver: "1.0",
});

/** The documented ResourceWriteSuccess / ResourceDeleteSuccess sample (Event Grid schema) for `resourceId`. */
export function documentedResourceEvent(kind: "write" | "delete", resourceId: string, callerObjectId: string) {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\//i.exec(resourceId);
  if (!m) throw new Error(`not a resource id: ${resourceId}`);
  const [, subscriptionId, resourceGroup, provider, type] = m;
  const action = `${provider}/${type}/${kind}`;
  const write = kind === "write";
  return {
    subject: resourceId,
    eventType: write ? "Microsoft.Resources.ResourceWriteSuccess" : "Microsoft.Resources.ResourceDeleteSuccess",
    eventTime: write ? "2018-07-19T18:38:04.6117357Z" : "2018-07-19T19:24:12.763881Z",
    id: write ? "4db48cba-50a2-455a-93b4-de41a3b5b7f6" : "19a69642-1aad-4a96-a5ab-8d05494513ce",
    data: {
      authorization: { scope: resourceId, action, evidence: { role: "Subscription Admin" } as unknown },
      claims: CLAIMS(callerObjectId),
      correlationId: "{ID}",
      ...(write
        ? {}
        : {
            httpRequest: {
              clientRequestId: "{ID}",
              clientIpAddress: "{IP-address}",
              method: "DELETE",
              url: `https://management.azure.com${resourceId}?api-version=2025-01-13`,
            },
          }),
      resourceProvider: provider!,
      resourceUri: resourceId,
      operationName: action,
      status: "Succeeded",
      subscriptionId: subscriptionId!,
      tenantId: "{tenant-id}",
    },
    dataVersion: "2",
    metadataVersion: "1",
    topic: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`,
  };
}
