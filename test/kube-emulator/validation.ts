/** Name and label syntax checks the API server applies to every object (apimachinery `validation`). */
import { causes, type StatusCause } from "./status.js";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

/** `metadata.name` of Secrets and Nodes. */
export function dnsSubdomainName(field: string, name: string): StatusCause[] {
  return isDnsSubdomain(name)
    ? []
    : [
        causes.invalid(
          field,
          name,
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ),
      ];
}

/** RBAC object names are path segments: anything but `.`, `..`, or a name containing `/` or `%`. */
export function pathSegmentName(field: string, name: string): StatusCause[] {
  if (name === "." || name === "..") return [causes.invalid(field, name, `may not be '${name}'`)];
  if (/[/%]/.test(name)) return [causes.invalid(field, name, "may not contain '/' or '%'")];
  return [];
}

export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return "prefix part must be a lowercase RFC 1123 subdomain";
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)";
  }
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  return value.length <= 63 && LABEL_VALUE.test(value)
    ? undefined
    : "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)";
}

export function labels(field: string, map: Record<string, string> | undefined): StatusCause[] {
  const out: StatusCause[] = [];
  for (const [key, value] of Object.entries(map ?? {})) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) out.push(causes.invalid(field, key, keyProblem));
    const valueProblem = labelValueProblem(value);
    if (valueProblem) out.push(causes.invalid(`${field}`, value, valueProblem));
  }
  return out;
}

export function configKey(field: string, key: string): StatusCause[] {
  return key.length <= 253 && CONFIG_KEY.test(key)
    ? []
    : [causes.invalid(field, key, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")];
}
