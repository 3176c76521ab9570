/** What the emulator's request pipeline hands a resource type, and what it gets back. */
import type { ResourceName } from "./status.js";

export type Verb = "get" | "list" | "create" | "update" | "delete";

export interface ResourceRequest {
  verb: Verb;
  namespace: string | undefined;
  name: string | undefined;
  /** Parsed JSON body; undefined when there was none. */
  body: unknown;
  query: URLSearchParams;
}

export interface HandlerResult {
  status: number;
  body?: unknown;
}

export interface ResourceType {
  readonly resource: ResourceName;
  readonly namespaced: boolean;
  readonly verbs: readonly Verb[];
  handle(request: ResourceRequest): HandlerResult;
}
