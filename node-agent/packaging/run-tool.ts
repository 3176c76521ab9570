/** Runs a build tool (mksquashfs, strip, node) without a shell and turns a failure into an error naming the tool. */
import { spawn } from "node:child_process";

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ToolError extends Error {
  readonly code = "tool_failed";
  constructor(
    readonly tool: string,
    readonly result: ToolResult | undefined,
    detail: string,
  ) {
    super(`${tool}: ${detail}`);
    this.name = "ToolError";
  }
}

export function runTool(
  tool: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; allowFailure?: boolean } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", (error: NodeJS.ErrnoException) => {
      reject(new ToolError(tool, undefined, error.code === "ENOENT" ? "not found on PATH" : error.message));
    });
    child.on("close", (code, signal) => {
      const result = { code: code ?? 128, stdout, stderr };
      if (code === 0 || options.allowFailure) resolve(result);
      else reject(new ToolError(tool, result, `exited with ${code ?? signal}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}

/** True when `tool` can be started (it is on PATH). */
export async function haveTool(tool: string, probeArgs: readonly string[] = ["--version"]): Promise<boolean> {
  try {
    await runTool(tool, probeArgs, { allowFailure: true });
    return true;
  } catch {
    return false;
  }
}
