/**
 * ARM's error envelope and the canned errors the emulator answers with. Callers are expected to branch on
 * `error.code`, so the codes are the real ones; messages follow the real wording where it is known.
 */
import type { HandlerResult } from "./wire.js";

export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ArmError";
  }

  toResult(): HandlerResult {
    return { status: this.status, headers: this.headers, body: { error: { code: this.code, message: this.message } } };
  }
}

const NOT_FOUND_FIX = "For more details please go to https://aka.ms/ARMResourceNotFoundFix";

export const armErrors = {
  missingApiVersion: () => new ArmError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."),
  invalidApiVersion: (value: string) =>
    new ArmError(
      400,
      "InvalidApiVersionParameter",
      `The api-version '${value}' is invalid. The supported versions are in the format 'yyyy-MM-dd' with an optional '-preview' suffix.`,
    ),
  missingAuthorization: () =>
    new ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", {
      "www-authenticate":
        'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The authentication failed because of missing \'Authorization\' header."',
    }),
  invalidToken: () =>
    new ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.", {
      "www-authenticate":
        'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."',
    }),
  subscriptionNotFound: (subscriptionId: string) => new ArmError(404, "SubscriptionNotFound", `The subscription '${subscriptionId}' could not be found.`),
  resourceGroupNotFound: (resourceGroup: string) => new ArmError(404, "ResourceGroupNotFound", `Resource group '${resourceGroup}' could not be found.`),
  resourceNotFound: (type: string, name: string, resourceGroup: string) =>
    new ArmError(404, "ResourceNotFound", `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. ${NOT_FOUND_FIX}`),
  invalidResourceType: (namespace: string, type: string, apiVersion: string) =>
    new ArmError(404, "InvalidResourceType", `The resource type '${type}' could not be found in the namespace '${namespace}' for api version '${apiVersion}'.`),
  /** The code and wording are the emulator's: ARM's answer to an empty path segment is not published. */
  invalidRequestUri: (path: string) => new ArmError(400, "InvalidRequestUri", `The request URI path '${path}' has an empty segment ('//').`),
  pathNotFound: (path: string) => new ArmError(404, "NotFound", `The requested path '${path}' was not found.`),
  methodNotAllowed: (method: string) => new ArmError(405, "MethodNotAllowed", `The requested resource does not support http method '${method}'.`),
  invalidRequestContent: (detail: string) =>
    new ArmError(400, "InvalidRequestContent", `The request content was invalid and could not be deserialized: '${detail}'.`),
  conflict: (message: string) => new ArmError(409, "Conflict", message),
} as const;
