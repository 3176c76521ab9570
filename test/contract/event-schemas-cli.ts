/** Writes docs/events/<type>.schema.json from the zod schemas in contract/lifecycle-events.ts (`npx tsx test/contract/event-schemas-cli.ts`). */
import { mkdirSync, writeFileSync } from "node:fs";
import { EVENT_SCHEMA_DIR, eventSchemaFiles } from "./event-schemas.js";

mkdirSync(EVENT_SCHEMA_DIR, { recursive: true });
for (const [file, text] of eventSchemaFiles()) {
  writeFileSync(file, text);
  console.log(file);
}
