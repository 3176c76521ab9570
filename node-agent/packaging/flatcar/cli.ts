/**
 * `tsx node-agent/packaging/flatcar/cli.ts <config.bu> [> config.ign]`: this repository's stand-in for
 * `butane --pretty --strict` on the Butane subset butane.ts implements. Exit 1 with the field named when the file uses
 * anything outside it.
 */
import { readFile } from "node:fs/promises";
import { ButaneError, transpile } from "./butane.js";

const [input] = process.argv.slice(2);
if (!input) {
  process.stderr.write("usage: tsx node-agent/packaging/flatcar/cli.ts <config.bu> > <config.ign>\n");
  process.exit(2);
}
try {
  process.stdout.write(transpile(await readFile(input, "utf8")));
} catch (error) {
  process.stderr.write(`${input}: ${error instanceof ButaneError || error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
