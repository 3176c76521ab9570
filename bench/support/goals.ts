/**
 * A benchmark's goals, printed in its JSON (`goals`) and gathered by `bench/run.ts` into one table: the figure, the
 * target it is held to (the issue that set it), and whether it was met on this run. Figures are never asserted in
 * tests; this is where a reader sees them against their targets.
 */
export interface Goal {
  goal: string;
  figure: number | string;
  target: string;
  met: boolean;
}

export const atMost = (goal: string, figure: number, bound: number, unit = ""): Goal => ({
  goal,
  figure: `${figure}${unit}`,
  target: `≤ ${bound}${unit}`,
  met: figure <= bound,
});
export const atLeast = (goal: string, figure: number, bound: number, unit = ""): Goal => ({
  goal,
  figure: `${figure}${unit}`,
  target: `≥ ${bound}${unit}`,
  met: figure >= bound,
});
