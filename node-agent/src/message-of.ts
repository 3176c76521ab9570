/** The text of anything thrown, for an event line. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
