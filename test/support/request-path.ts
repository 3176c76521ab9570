/** Request paths as the emulators compare them: decoded segments, repeated slashes collapsed, no trailing slash. */
export function normalisePath(rawPath: string): string {
  const segments = rawPath
    .split("/")
    .filter((s) => s.length > 0)
    .map(decodeSegment);
  return `/${segments.join("/")}`;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
