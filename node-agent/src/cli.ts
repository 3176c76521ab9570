/** The `flexnode-agent` command line. */
export const AGENT_VERSION = "0.1.0";

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command] = argv;
  if (command === "version") {
    io.stdout.write(`flexnode-agent ${AGENT_VERSION}\n`);
    return 0;
  }
  io.stderr.write(`unknown command: ${command ?? "(none)"}\n`);
  return 2;
}
