/**
 * `flexnode`: the admin CLI. `run(argv, io)` is the whole program (the bin entry only wires it to the process), so
 * tests drive it in-process against the sandbox stack.
 */
import { authorization } from "./auth.js";
import { COMMANDS, findCommand } from "./commands.js";
import { adminOperations, type Operation } from "./operations.js";
import { render } from "./render.js";
import { buildRequest, kebab, operationFlags, parseFlags, UsageError } from "./request.js";
import { EXIT, exitFor } from "./exit-codes.js";
import { watch } from "./watch.js";

export { EXIT, exitFor };

export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** For tests of watch: instead of real sleeping. */
  sleep?: (ms: number) => Promise<void>;
}

/** `npm start` and `func start` listen here. */
const LOCAL_URL = "http://127.0.0.1:7071";

const GLOBAL_FLAGS = ["url", "token", "output", "login", "tenant", "client-id", "scope", "help"];

export interface Api {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; json: unknown }>;
}

export async function run(argv: string[], io: Io): Promise<number> {
  const ops = adminOperations();
  const command = findCommand(argv);
  const isWatch = argv[0] === "watch";
  if (!command && !isWatch) {
    if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
      usage(io.out, ops);
      return EXIT.ok;
    }
    io.err(`flexnode: unknown command '${argv.slice(0, 2).join(" ")}'`);
    usage(io.err, ops);
    return EXIT.usage;
  }
  const rest = argv.slice(isWatch ? 1 : command!.words.length);
  const op = command && ops.get(command.operationId);
  const { positionals, flags } = parseFlags(rest, new Set(["help", ...(op?.body?.fields.filter((f) => f.type === "boolean").map((f) => kebab(f.name)) ?? [])]));
  if (flags.has("help")) {
    if (op) commandHelp(io.out, command!.words, command!.positional, op);
    else io.out("flexnode watch [<nodeId>] [--interval S] [--timeout S]   live progress of one node, or of the fleet");
    return EXIT.ok;
  }
  const flag = (name: string, env?: string) => {
    const v = flags.get(name);
    return typeof v === "string" ? v : env ? io.env[env] : undefined;
  };
  const output = flag("output") ?? "table";
  try {
    if (output !== "table" && output !== "json") throw new UsageError("--output is table or json");
    const allowed = new Set([...GLOBAL_FLAGS, ...(op ? [...operationFlags(op).keys(), ...(op.body ? ["body"] : [])] : ["interval", "timeout"])]);
    const unknown = [...flags.keys()].find((f) => !allowed.has(f));
    if (unknown) throw new UsageError(`unknown option --${unknown}`);
    const token = flag("token", "FLEXNODE_ADMIN_TOKEN");
    const url = flag("url", "FLEXNODE_URL");
    // The local default only ever gets a local token: an Entra sign-in needs the deployed app's https URL, given.
    const base = (url ?? (token ? LOCAL_URL : "")).replace(/\/+$/, "");
    const login = flag("login");
    if (login !== undefined && login !== "device" && login !== "browser") throw new UsageError("--login is device or browser");
    const auth = await authorization({
      token,
      url,
      scope: flag("scope", "FLEXNODE_SCOPE"),
      tenant: flag("tenant", "FLEXNODE_TENANT"),
      clientId: flag("client-id", "FLEXNODE_CLIENT_ID"),
      login,
      prompt: io.err,
    });
    const api = httpApi(base, auth, io.fetch ?? fetch);
    if (isWatch) return await watch(api, { nodeId: positionals[0], flags, output, io });
    const request = buildRequest(command!, op!, positionals, flags);
    const res = await api.call(request.method, request.path, request.body);
    if (res.status >= 400) {
      const problem = res.json as { title?: string; detail?: string; errors?: { path: string; message: string }[] } | undefined;
      if (output === "json") io.err(JSON.stringify(problem ?? { status: res.status }));
      else {
        io.err(`flexnode: ${res.status} ${problem?.title ?? "request failed"}${problem?.detail ? `: ${problem.detail}` : ""}`);
        for (const e of problem?.errors ?? []) io.err(`  ${e.path || "(body)"}: ${e.message}`);
        const retry = res.headers.get("retry-after");
        if (retry) io.err(`  retry after ${retry} s`);
      }
      return exitFor(res.status);
    }
    if (output === "json") io.out(JSON.stringify(res.json ?? null));
    else for (const line of render(command!.view, res.json)) io.out(line);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`flexnode: ${error.message}`);
      return EXIT.usage;
    }
    io.err(`flexnode: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.failed;
  }
}

function httpApi(base: string, authorization: string, fetchFn: typeof fetch): Api {
  return {
    async call(method, path, body) {
      const res = await fetchFn(`${base}${path}`, {
        method,
        headers: { authorization, accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = { title: text.slice(0, 200) };
      }
      return { status: res.status, headers: res.headers, json };
    },
  };
}

function usage(print: (line: string) => void, ops: Map<string, Operation>): void {
  print("usage: flexnode <command> [args] [--output table|json] [--url URL] [--token T | --scope S --client-id C [--tenant T] [--login device|browser]]");
  print("");
  for (const c of COMMANDS) {
    const words = `${c.words.join(" ")}${c.positional ? ` <${c.positional}>` : ""}`;
    print(`  ${words.padEnd(34)}${ops.get(c.operationId)?.summary ?? ""}`);
  }
  print(`  ${"watch [<nodeId>]".padEnd(34)}Live progress of one node (until Ready or Failed), or of the fleet`);
  print("");
  print("`flexnode <command> --help` lists a command's options. Exit codes: 0 ok, 1 failed, 2 usage, 3 unauthorized, 4 not found,");
  print("5 conflict, 6 invalid input, 7 busy (retry later), 8 server error, 10 watched node Failed, 11 watch timed out.");
  print("Environment: FLEXNODE_URL, FLEXNODE_ADMIN_TOKEN (local), FLEXNODE_SCOPE, FLEXNODE_CLIENT_ID, FLEXNODE_TENANT (Entra ID).");
  print("Prefer FLEXNODE_ADMIN_TOKEN to --token: a command line is visible to every user of the machine (ps) and kept in shell history.");
  print(`A local token goes to --url (default ${LOCAL_URL}); an Entra ID sign-in needs --url https://<app> and is sent nowhere else.`);
}

function commandHelp(print: (line: string) => void, words: string[], positional: string | undefined, op: Operation): void {
  print(`flexnode ${words.join(" ")}${positional ? ` <${positional}>` : ""}: ${op.summary}`);
  print(`  ${op.method} ${op.path}  (needs FlexNode.${op.access === "admin" ? "Admin" : "Reader"})`);
  for (const [flag, t] of operationFlags(op)) {
    if (t.name === positional) continue;
    const p = op.parameters.find((x) => x.name === t.name) ?? op.body?.fields.find((x) => x.name === t.name);
    print(`  --${flag}${t.type === "boolean" ? "" : ` <${t.type ?? "value"}>`}${p?.description ? `  ${p.description}` : ""}`);
  }
  if (op.body) print("  --body <json|@file>  the whole body (flags override its fields)");
}
