// The fleet page's script: reads the admin API every two seconds and draws what it says. Every value from the API
// goes into the page as text (never as markup): host names and error messages come from machines. The API checks
// the caller's role on every request; the page only hides the buttons a Reader cannot use.
const api = new URL(".", location.href); // /api/manage/
const admin = document.body.dataset.role === "admin";
const PHASES = ["reserve", "openMailbox", "ensureArcMachine", "grantAccess", "issueKubeletCredential", "runNodeSteps", "verifyReady", "finalize", "done"];
const ACTIVE = new Set(["Enrolling", "AwaitingApproval", "Onboarding", "Offboarding"]);
/** Bounds the requests one refresh makes for per-node progress. */
const MAX_DETAILS = 50;
const REFRESH_MS = 2000;
let selected = new URLSearchParams(location.search).get("node");

const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (strings become text nodes). */
function h(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (v === undefined || v === false) continue;
    if (k === "onclick") el.addEventListener("click", v);
    else el.setAttribute(k, String(v));
  }
  el.append(...children.filter((c) => c !== undefined && c !== null));
  return el;
}

function bar(fraction, kind, label) {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  const fill = h("span");
  // Through the CSSOM: the content security policy refuses style attributes.
  fill.style.width = `${pct}%`;
  return h("div", { class: `bar ${kind}`, role: "progressbar", "aria-label": label, "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 }, fill);
}

async function call(method, path) {
  const res = await fetch(new URL(path, api), { method, headers: { accept: "application/json" }, credentials: "same-origin" });
  const text = await res.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${body?.title ?? ""} ${body?.detail ?? ""}`.trim());
  return body;
}

function action(label, method, path) {
  return h(
    "button",
    {
      type: "button",
      "data-action": label,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await call(method, path);
          showError(undefined);
        } catch (error) {
          showError(error);
        }
        await refresh();
      },
    },
    label,
  );
}

function showError(error) {
  const el = $("#error");
  el.hidden = !error;
  el.textContent = error ? String(error.message ?? error) : "";
}

const nodeName = (n) => `${n.facts?.hostname ?? "?"}`;

function drawPools(fleet) {
  const body = $("#pools tbody");
  body.replaceChildren(
    ...fleet.pools.map((p) =>
      h(
        "tr",
        { "data-pool": p.pool },
        h("td", {}, p.pool),
        h("td", {}, String(p.nodes)),
        h(
          "td",
          {},
          bar(p.maxInFlight ? p.inFlight / p.maxInFlight : 0, "capacity", `${p.pool} slots in use`),
          `${p.inFlight} / ${p.maxInFlight}${p.waiting ? `, ${p.waiting} waiting` : ""}`,
        ),
        h(
          "td",
          {},
          ...Object.entries(p.byStatus)
            .filter(([, n]) => n > 0)
            .map(([s, n]) => h("span", { class: `chip status-${s}` }, `${s} ${n}`)),
        ),
      ),
    ),
  );
  $("#statuses ul").replaceChildren(
    ...Object.entries(fleet.totals.byStatus).map(([s, n]) => h("li", { class: `chip status-${s}`, "data-status": s }, `${s} `, h("b", {}, String(n)))),
  );
  const codes = new Set([...Object.keys(fleet.failures.lastDay), ...Object.keys(fleet.failures.lastHour)]);
  $("#failures tbody").replaceChildren(
    ...[...codes]
      .sort()
      .map((c) =>
        h(
          "tr",
          { "data-code": c },
          h("td", {}, h("code", {}, c)),
          h("td", {}, String(fleet.failures.lastHour[c] ?? 0)),
          h("td", {}, String(fleet.failures.lastDay[c] ?? 0)),
        ),
      ),
  );
}

function drawProgress(active, details) {
  $("#onboarding .empty").hidden = active.length > 0;
  $("#onboarding ul").replaceChildren(
    ...active.map((n) => {
      const p = details.get(n.nodeId)?.progress;
      const phase = p?.phase;
      const phaseIndex = phase ? PHASES.indexOf(phase) : -1;
      return h(
        "li",
        { "data-node-id": n.nodeId, "data-status": n.status, "data-phase": phase },
        h(
          "div",
          { class: "label" },
          h("span", {}, h("b", {}, nodeName(n)), " ", h("code", {}, n.nodeId)),
          h("span", { class: `chip status-${n.status}` }, n.status),
        ),
        phaseIndex >= 0 ? bar((phaseIndex + 1) / PHASES.length, "phase", `${n.nodeId} phase`) : undefined,
        phase ? h("div", { class: "label" }, h("span", {}, `phase ${phase}`), h("span", {}, `${phaseIndex + 1} / ${PHASES.length}`)) : undefined,
        p?.stepCount ? bar((p.stepsDone ?? 0) / p.stepCount, "step", `${n.nodeId} steps`) : undefined,
        p?.stepCount
          ? h(
              "div",
              { class: "label" },
              h("span", {}, p.step ? `step ${p.step}, attempt ${p.attempt ?? 1}` : "steps"),
              h("span", {}, `${p.stepsDone ?? 0} / ${p.stepCount}`),
            )
          : undefined,
        p?.lastError ? h("div", { class: "error-text" }, p.lastError) : undefined,
        admin && n.status === "AwaitingApproval"
          ? h("div", {}, action("approve", "POST", `nodes/${n.nodeId}/approve`), action("reject", "POST", `nodes/${n.nodeId}/reject`))
          : undefined,
      );
    }),
  );
}

function drawFailed(failed) {
  $("#failures ul.failed").replaceChildren(
    ...failed.map((n) =>
      h(
        "li",
        { "data-node-id": n.nodeId },
        h("div", { class: "label" }, h("span", {}, h("b", {}, nodeName(n)), " ", h("code", {}, n.nodeId)), h("code", {}, n.lastError?.code ?? "")),
        h("div", { class: "error-text" }, n.lastError?.message ?? ""),
        h(
          "div",
          {},
          h("button", { type: "button", "data-action": "timeline", onclick: () => void select(n.nodeId) }, "timeline"),
          admin ? action("retry", "POST", `nodes/${n.nodeId}/retry`) : undefined,
        ),
      ),
    ),
  );
}

function drawNodes(nodes) {
  $("#nodes tbody").replaceChildren(
    ...nodes.map((n) =>
      h(
        "tr",
        { "data-node-id": n.nodeId, "data-status": n.status },
        h(
          "td",
          {},
          h(
            "a",
            {
              href: `?node=${n.nodeId}`,
              onclick: (e) => {
                e.preventDefault();
                void select(n.nodeId);
              },
            },
            h("code", {}, n.nodeId),
          ),
        ),
        h("td", {}, nodeName(n)),
        h("td", {}, n.pool),
        h("td", {}, h("span", { class: `chip status-${n.status}` }, n.status)),
        h("td", {}, admin && (n.status === "Ready" || n.status === "Failed") ? action("decommission", "POST", `nodes/${n.nodeId}/decommission`) : undefined),
      ),
    ),
  );
}

function drawTimeline(node) {
  const section = $("#timeline");
  section.hidden = !node;
  if (!node) return;
  section.dataset.nodeId = node.nodeId;
  $("#timeline .node").textContent = `${nodeName(node)} (${node.nodeId}, ${node.status})`;
  $("#timeline ol").replaceChildren(
    ...node.timeline.map((e) =>
      h(
        "li",
        { class: e.outcome ?? e.kind, "data-kind": e.kind, "data-what": e.what },
        h("time", {}, e.at.replace("T", " ").replace(/\.\d+Z$/, "Z")),
        " ",
        e.kind === "step" ? `step ${e.what} #${e.attempt}: ${e.outcome} in ${e.durationMs} ms` : `${e.what}${e.actor ? ` by ${e.actor}` : ""}`,
        e.details?.code || e.details?.message ? h("span", { class: "error-text" }, ` ${e.details.code ?? ""} ${e.details.message ?? ""}`) : undefined,
      ),
    ),
  );
}

async function select(nodeId) {
  selected = nodeId;
  history.replaceState(null, "", `?node=${nodeId}`);
  await refresh();
}

let chain = Promise.resolve();
/** Draws the page from the API; refreshes run one after another (a click during a poll draws again after it). */
function refresh() {
  chain = chain.then(draw);
  return chain;
}

async function draw() {
  try {
    const [fleet, page] = await Promise.all([call("GET", "fleet"), call("GET", "nodes?pageSize=1000")]);
    const nodes = page.items;
    const active = nodes.filter((n) => ACTIVE.has(n.status));
    const wanted = [...active.slice(0, MAX_DETAILS).map((n) => n.nodeId), ...(selected ? [selected] : [])];
    const details = new Map(await Promise.all([...new Set(wanted)].map(async (id) => [id, await call("GET", `nodes/${id}`).catch(() => undefined)])));
    drawPools(fleet);
    drawProgress(active, details);
    drawFailed(nodes.filter((n) => n.status === "Failed"));
    drawNodes(nodes);
    drawTimeline(selected ? details.get(selected) : undefined);
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError(error);
  }
}

async function poll() {
  await refresh();
  setTimeout(poll, REFRESH_MS);
}

$("#who").textContent = `${document.body.dataset.user} (${admin ? "Admin" : "Reader"})`;
void poll();
