/**
 * Whether a pool spec, valid by its schema, can be stored: the pool row holds each structured field as one JSON
 * string property, and the service refuses a string of over MAX_STRING_CHARS (400 PropertyValueTooLarge). Only the Arc
 * tags can get there (47 tags of 512 + 256 characters are ~36,000 as JSON); labels (64, at most ~24,700) and taints
 * (32, at most ~14,000) cannot. The registry refuses such a row before writing anything (pools.ts, PoolRowTooLarge);
 * this names the field for the admin API's 422.
 */
import type { PoolSpec } from "../clients/registry/model.js";
import { MAX_STRING_CHARS, oversizedProperties, toRow } from "../clients/registry/table-rows.js";

/** A field of the request body (a JSON pointer) and why it cannot be stored. */
export interface StorageIssue {
  path: string;
  message: string;
}

export function poolSpecStorageIssues(spec: PoolSpec): StorageIssue[] {
  return oversizedProperties(toRow("pool", "pool", spec)).map(({ name, chars }) => ({
    path: name === "arc" ? "/arc/tags" : `/${name}`,
    message: `too long to store: ${chars} characters as JSON, at most ${MAX_STRING_CHARS} (Azure Table storage's limit on one property)`,
  }));
}
