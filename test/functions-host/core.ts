/**
 * A stand-in for `@azure/functions-core`, the module the Azure Functions Node worker injects into the process.
 * `@azure/functions` and `durable-functions` call it to register functions; with it in place every `app.*` and
 * `df.app.*` registration lands in this registry with the exact binding metadata the worker would send to the host.
 */
import Module from "node:module";

export interface RpcBindingInfo {
  type: string;
  direction?: "in" | "out" | "inout";
  name?: string;
  [key: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: unknown;
  [key: string]: unknown;
}

export type FunctionCallback = (...args: unknown[]) => unknown;

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
  /** The binding whose type ends in "Trigger" (the library's own test). */
  triggerName: string;
  trigger: RpcBindingInfo;
}

/** The slice of the library's ProgrammingModel / InvocationModel the worker drives. */
export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: CoreInvocationContext): InvocationModel;
}
export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}
export interface RpcTypedData {
  string?: string;
  json?: string;
  bytes?: Uint8Array;
  http?: Record<string, unknown>;
  [key: string]: unknown;
}
export interface RpcInvocationResponse {
  invocationId?: string;
  outputData?: { name: string; data: RpcTypedData | null | undefined }[];
  returnValue?: RpcTypedData | null;
}
export interface CoreInvocationContext {
  invocationId: string;
  request: {
    inputData?: { name: string; data: RpcTypedData }[];
    triggerMetadata?: Record<string, RpcTypedData>;
    retryContext?: unknown;
    traceContext?: unknown;
  };
  metadata: { name: string; bindings: Record<string, RpcBindingInfo> };
  state?: string;
  log(level: string, category: "user" | "system", message: string): void;
}

export interface LogRecord {
  level: string;
  category: "user" | "system";
  message: string;
}

class Disposable {
  #fn: (() => void) | undefined;
  constructor(fn: () => void) {
    this.#fn = fn;
  }
  static from(...items: { dispose(): void }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose(): void {
    this.#fn?.();
    this.#fn = undefined;
  }
}

const isTrigger = (type: string): boolean => /trigger$/i.test(type);

export class FunctionRegistry {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks = new Map<string, ((...args: unknown[]) => unknown)[]>();
  programmingModel: ProgrammingModel | undefined;
  /** Logs the library writes outside any invocation (system warnings). */
  readonly systemLogs: LogRecord[] = [];

  /** The object `require('@azure/functions-core')` returns. */
  readonly coreApi = {
    version: "3.10.1",
    hostVersion: "4.1040.0",
    Disposable,
    registerFunction: (metadata: FunctionMetadata, callback: FunctionCallback): Disposable => {
      const entry = Object.entries(metadata.bindings).find(([, b]) => isTrigger(b.type));
      if (!entry) throw new Error(`function "${metadata.name}" has no trigger binding`);
      // Test files re-import function modules into a fresh module graph; the last registration wins, as a restarted worker would see it.
      this.functions.set(metadata.name, { metadata, callback, triggerName: entry[0], trigger: entry[1] });
      return new Disposable(() => this.functions.delete(metadata.name));
    },
    setProgrammingModel: (model: ProgrammingModel): void => {
      this.programmingModel = model;
    },
    getProgrammingModel: (): ProgrammingModel | undefined => this.programmingModel,
    registerHook: (hookName: string, callback: (...args: unknown[]) => unknown): Disposable => {
      const list = this.hooks.get(hookName) ?? [];
      list.push(callback);
      this.hooks.set(hookName, list);
      return new Disposable(() => list.splice(list.indexOf(callback), 1));
    },
    log: (level: string, category: "user" | "system", message: string): void => {
      this.systemLogs.push({ level, category, message });
    },
  };

  get(name: string): RegisteredFunction {
    const fn = this.functions.get(name);
    if (!fn) throw new Error(`no function named "${name}" is registered (known: ${[...this.functions.keys()].join(", ")})`);
    return fn;
  }

  byTriggerType(type: string): RegisteredFunction[] {
    return [...this.functions.values()].filter((f) => f.trigger.type.toLowerCase() === type.toLowerCase());
  }
}

const REGISTRY_KEY = Symbol.for("flexnode.test.functionsCore");

/**
 * Installs the stand-in the way the worker does (a Proxy over Module.prototype.require), once per process.
 * It must run before `@azure/functions` first registers anything: the library caches the core lookup for its lifetime.
 */
export function installFunctionsCore(): FunctionRegistry {
  const g = globalThis as unknown as Record<symbol, FunctionRegistry | undefined>;
  const existing = g[REGISTRY_KEY];
  if (existing) return existing;
  const registry = new FunctionRegistry();
  g[REGISTRY_KEY] = registry;
  const proto = (Module as unknown as { prototype: { require: (id: string) => unknown } }).prototype;
  proto.require = new Proxy(proto.require, {
    apply(target, thisArg: unknown, args: [string]) {
      if (args[0] === "@azure/functions-core") return registry.coreApi;
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
  return registry;
}

export function functionsCore(): FunctionRegistry {
  const registry = (globalThis as unknown as Record<symbol, FunctionRegistry | undefined>)[REGISTRY_KEY];
  if (!registry) throw new Error("the functions-core stand-in is not installed; is test/functions-host/setup.ts in vitest setupFiles?");
  return registry;
}
