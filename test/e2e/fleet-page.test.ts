/**
 * The fleet page (`GET /api/manage/ui`) in a real browser: Debian's headless Chromium driven by playwright-core
 * against the sandbox stack with real agents. The page shows a failed node's error code and its timeline, an approve
 * click starts onboarding of a node parked for approval, and the page follows it to Ready. A screenshot goes to
 * test-results/ (CI keeps the folder); docs/fleet-page.png is a copy of one. Skips, saying why, only when the
 * browser is not installed.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureFor, planFor, sandboxHostSide, startFleet, type Fleet, type Stack } from "../sandbox/index.js";
import { startE2eStack } from "./support.js";

const CHROMIUM = "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (Debian package chromium; .ci/run installs it)`;
export const SCREENSHOT = "test-results/fleet-page.png";
/** Bounds on waiting for the page to show what the stack does in real time (an approved agent checks every 30 s). */
const SHOWN_WITHIN_MS = 90_000;

let stack: Stack;
let browser: Browser | undefined;
let page: Page;
const fleets: Fleet[] = [];
const browserErrors: string[] = [];
let failedId = "";
let failedStep = "";

if (missing) {
  it.skip(`fleet page in a browser: not exercised, ${missing}`, () => undefined);
} else {
  beforeAll(async () => {
    ({ stack } = await startE2eStack());
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    // The front door plays App Service authentication: its admin token stands in for the signed-in session.
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, extraHTTPHeaders: { authorization: `Bearer ${stack.adminToken}` } });
    page = await context.newPage();
    page.on("pageerror", (e) => browserErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") browserErrors.push(`console: ${m.text()}`);
    });

    const plan = planFor({ immutable: true, arch: "amd64", catalog: stack.artifacts.catalog });
    failedStep = plan[0]!.stepId;
    const failure = failureFor(failedStep, plan, stack.artifacts);
    const { enrolmentUrl } = await stack.createToken({ maxUses: 1 });
    const failing = await startFleet({
      stack,
      enrolmentUrl,
      hostSide: sandboxHostSide,
      specs: [{ name: "edge-fails", immutable: true, arch: "amd64", index: 1, failure }],
    });
    fleets.push(failing);
    const [outcome] = await failing.settle(SHOWN_WITHIN_MS);
    expect(outcome!.status).toBe("Failed");
    failedId = outcome!.node.nodeId!;
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    for (const f of fleets) await f.stop({ removeRoots: true });
    await stack?.close();
  });

  describe("the fleet page in headless Chromium", () => {
    it("serves the page to signed-in callers only, with a policy that allows no inline script", async () => {
      expect((await fetch(`${stack.url}/api/manage/ui`)).status).toBe(401);
      const res = await fetch(`${stack.url}/api/manage/ui`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self';");
      expect(await res.text()).toContain('data-role="admin"');
      const js = await fetch(`${stack.url}/api/manage/ui/fleet.js`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
      expect([js.status, js.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
      expect((await fetch(`${stack.url}/api/manage/ui/other.js`, { headers: { authorization: `Bearer ${stack.adminToken}` } })).status).toBe(400);
    });

    it(
      "shows the pool's capacity, the failure by code, and the failed node's timeline",
      async () => {
        await page.goto(`${stack.url}/api/manage/ui`);
        await page.locator('#pools tr[data-pool="demo"]').waitFor({ timeout: SHOWN_WITHIN_MS });
        expect(await page.locator('#pools tr[data-pool="demo"]').innerText()).toMatch(/0 \/ 100/);
        await page.locator('#failures tr[data-code="NodeStepFailed"]').waitFor({ timeout: SHOWN_WITHIN_MS });
        await page.locator(`#failures li[data-node-id="${failedId}"] button[data-action="timeline"]`).click();
        await page.locator(`#timeline[data-node-id="${failedId}"] li[data-what="${failedStep}"].failed`).first().waitFor({ timeout: SHOWN_WITHIN_MS });

        // The page shows the node's timeline as the API gives it: every audit event and step attempt, in order.
        const api = (await stack.admin("GET", `/api/manage/nodes/${failedId}`)).json as { timeline: { what: string; kind: string }[] };
        const shown = await page.locator("#timeline li").evaluateAll((els) => els.map((e) => [e.getAttribute("data-kind"), e.getAttribute("data-what")]));
        expect(shown).toEqual(api.timeline.map((e) => [e.kind, e.what]));
        expect(shown).toContainEqual(["event", "node.enrol"]);
        expect(shown.filter(([kind, what]) => kind === "step" && what === failedStep).length).toBeGreaterThan(0);
        expect(browserErrors).toEqual([]);
      },
      2 * SHOWN_WITHIN_MS,
    );

    it("starts onboarding with an approve click and follows the node to Ready", async () => {
      const { enrolmentUrl } = await stack.createToken({ maxUses: 1, approvalRequired: true });
      const fleet = await startFleet({
        stack,
        enrolmentUrl,
        hostSide: sandboxHostSide,
        specs: [{ name: "edge-approved", immutable: true, arch: "amd64", index: 2 }],
      });
      fleets.push(fleet);
      const nodeId = fleet.nodes[0]!.nodeId!;
      const item = page.locator(`#onboarding li[data-node-id="${nodeId}"]`);
      await item.locator('button[data-action="approve"]').click({ timeout: SHOWN_WITHIN_MS });
      // The saga runs while the agent still sleeps out its approval poll: the page shows its phase bar.
      await item.locator(".bar.phase").waitFor({ timeout: SHOWN_WITHIN_MS });
      await page.locator(`#nodes tr[data-node-id="${nodeId}"][data-status="Ready"]`).waitFor({ timeout: SHOWN_WITHIN_MS });

      const [outcome] = await fleet.settle(SHOWN_WITHIN_MS);
      expect(outcome!.status).toBe("Ready");
      const api = (await stack.admin("GET", `/api/manage/nodes/${nodeId}`)).json as { timeline: { what: string; actor?: string }[]; progress: unknown };
      expect(api.timeline.filter((e) => e.what === "node.approve").map((e) => e.actor)).toEqual(["sandbox-admin@flexnode.local"]);
      expect(api.progress).toMatchObject({ phase: "done", stepsDone: expect.any(Number) as number, stepCount: expect.any(Number) as number });
      const { stepsDone, stepCount } = api.progress as { stepsDone: number; stepCount: number };
      expect(stepsDone).toBe(stepCount);

      // The picture CI keeps: both nodes in the table, the failed node's timeline open.
      await page.goto(`${stack.url}/api/manage/ui?node=${failedId}`);
      await page.locator(`#timeline[data-node-id="${failedId}"] li`).first().waitFor({ timeout: SHOWN_WITHIN_MS });
      await page.locator(`#nodes tr[data-node-id="${nodeId}"][data-status="Ready"]`).waitFor({ timeout: SHOWN_WITHIN_MS });
      await mkdir("test-results", { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(existsSync(SCREENSHOT)).toBe(true);
      expect(browserErrors).toEqual([]);
    }, 200_000);
  });
}
