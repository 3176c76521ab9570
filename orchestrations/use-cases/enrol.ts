/**
 * Enrolment: a node presents a token, its facts and its public key; the service decides who it is (node id from
 * pool + machine identity), whether it may join (token, clone policy, approval, pool capacity), records it, and starts
 * its onboarding saga under the node id. Every outcome is safe to repeat: a node that retries gets the same answer,
 * and never a second saga or a second token use.
 *
 * Storage cost (issue 16; bench/enrol-throughput.ts prints it): a first-time enrolment is 5 registry requests (token,
 * pool, key and node index with the request's nonce and the token's use, node with fingerprints and pool slot, audit;
 * a token shared by several nodes takes its use in a request of its own, group-committed) and a retry 3 (token, node,
 * nonce). Which comes first is decided by the token: one with a use left most likely enrols a new node, so the key
 * is bound before anything is read; a spent one can only serve a retry, so the node is read first. Into a full pool
 * the same: the node waits for a slot (in-flight.ts).
 * Nothing reads a row it just wrote, and writes carry the ETag of the read before them.
 * Concurrent enrolments of one process share some of these: overlapping reads of the pool (pools.ts), writes of a
 * shared token (tokens.ts) and audit inserts (group-insert.ts) go as one request each.
 *
 * Longer than the ~300 lines we aim for, knowingly: first enrolment, replay, clone policy (reject, quarantine,
 * replace) and re-key are branches of one decision over the same token, key index and node rows, and they share the
 * token refund, capacity check and saga start. Split apart, each would import the others' internals; a next step is a
 * clone-policy module once those shared helpers have a home of their own.
 */
import { lifecycleEvent } from "../../contract/lifecycle-events.js";
import type { LifecycleEvents } from "../clients/events/lifecycle-events.js";
import { KeyAlreadyBound, RegistryError, type Registry } from "../clients/registry/registry.js";
import type { NodeFacts, NodeRecord, PoolRecord, TokenRecord } from "../clients/registry/model.js";
import { deriveNodeId, machineIdentity } from "../../contract/node-id.js";
import { parseToken, secretMatches } from "./token-secret.js";
import { newRunId } from "../onboard/saga-run.js";
import { ONBOARD_NODE, type OnboardNodeInput } from "../onboard/onboard-node.js";
import { isRunning, type WorkflowClient } from "../clients/workflow-client.js";
import { startOffboarding } from "./decommission.js";
import { onboardingMustWait, runningSaga } from "./node-sagas.js";
import type { NonceClaim } from "../../contract/nonce-store.js";
import { mergeNodeLabels, nodeLabelBudgetIssues } from "./node-label-budget.js";

export interface EnrolDeps {
  registry: Registry;
  workflows: WorkflowClient;
  now: () => Date;
  /** Where the enrolled and quarantined lifecycle events go. */
  events: LifecycleEvents;
  /**
   * The request's signature nonce, verified but not yet recorded: enrolment records it before its first write (a
   * first-time enrolment in the same transaction as its index rows), and refuses a request whose nonce was used.
   */
  nonce?: NonceClaim;
}

export interface EnrolRequest {
  token: string;
  facts: NodeFacts;
  publicKey: string;
  /** The key's id (RFC 7638 thumbprint), computed by the caller from `publicKey`. */
  keyId: string;
}

export type EnrolOutcome =
  /** 201: a new node (or a failed one starting over) is onboarding. */
  | { kind: "created"; node: NodeRecord }
  /** 200: this node had enrolled already; nothing new happened. */
  | { kind: "replayed"; node: NodeRecord }
  /** 202: the node waits for an admin (token or pool requires approval, or a quarantined clone). */
  | { kind: "awaitingApproval"; node: NodeRecord; reason: "approval-required" | "clone-quarantined" };

export type EnrolFailure =
  | "token-unknown"
  | "token-expired"
  | "token-revoked"
  | "token-exhausted"
  | "pool-missing"
  | "clone-rejected"
  | "clone-replace-pending"
  | "clone-claim-pending"
  /** Another of the node's sagas (a run still finishing, a compensation, an offboarding) owns it for now. */
  | "saga-finishing";

export class EnrolError extends Error {
  constructor(
    readonly code: EnrolFailure,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "EnrolError";
  }
}

export const REPLACE_RETRY_AFTER_SECONDS = 5;
const ACTOR = (keyId: string) => `node:${keyId}`;

export async function enrol(deps: EnrolDeps, request: EnrolRequest): Promise<EnrolOutcome> {
  const nonce = new PendingNonce(deps.registry, deps.nonce);
  try {
    return await decide({ ...deps, nonce }, request);
  } catch (error) {
    // A refusal is recorded too: replayed later, a refused request (token exhausted, say) must not then succeed. Except an
    // unknown token's: token ids are random, so its replay is refused the same way, and recording it would let anyone
    // with a fresh key make the service write a row per request.
    if (error instanceof EnrolError && error.code !== "token-unknown") await nonce.claim();
    throw error;
  }
}

/** The request's nonce, recorded once: on its own, or handed to the first-time enrolment's index transaction. */
class PendingNonce {
  constructor(
    private readonly registry: Registry,
    private entry: NonceClaim | undefined,
  ) {}

  async claim(): Promise<void> {
    const entry = this.take();
    if (entry) await this.registry.nodes.claimNonce(entry);
  }

  /** The nonce for a write that records it (or refuses NonceUsed); undefined once taken. */
  take(): NonceClaim | undefined {
    const entry = this.entry;
    this.entry = undefined;
    return entry;
  }

  /** Gives back a nonce taken for a write that wrote nothing. */
  restore(entry: NonceClaim | undefined): void {
    this.entry ??= entry;
  }
}

/** What the branches use: the deps without the raw nonce. */
type Base = Omit<EnrolDeps, "nonce">;
type Deps = Base & { nonce: PendingNonce };

async function decide(deps: Deps, request: EnrolRequest): Promise<EnrolOutcome> {
  const { registry } = deps;
  const parsed = parseToken(request.token);
  const token = parsed ? await registry.tokens.get(parsed.tokenId) : undefined;
  // Unknown id and wrong secret look the same: the answer must not reveal which token ids exist.
  if (!parsed || !token || !secretMatches(parsed.secret, token.secretHash)) throw new EnrolError("token-unknown", "The enrolment token is not valid.");
  const nodeId = deriveNodeId(token.pool, request.facts);
  // A token with a use left most likely enrols a new node: bind its key first (with the nonce), and fall back to
  // reading the node when the key is bound already. A spent token can only serve a retry: read the node first, which
  // is all a retry needs.
  // The pool is read once, when a path needs it: a retry needs only the node.
  let poolRead: Promise<PoolRecord | undefined> | undefined;
  const poolOf = () => (poolRead ??= registry.pools.spec(token.pool));
  if (!tokenRefusal(token, deps.now(), "must-have-a-use")) {
    const pool = await poolOf();
    const outcome = pool && (await enrolNew(deps, { token, pool, nodeId, request }));
    if (outcome) return outcome;
  }
  const existing = await registry.nodes.getInPool(token.pool, nodeId);
  if (existing && existing.keyId === request.keyId && existing.status !== "Failed" && existing.status !== "Offboarded") {
    // A retry answers only with a token that could still enrol it: revoked and expired tokens are refused here as
    // everywhere; one used up by this very node's enrolment still serves its retries.
    const refusal = tokenRefusal(token, deps.now(), existing.tokenId === token.tokenId ? "spent-by-this-node" : "must-have-a-use");
    if (refusal) throw refusal;
    await deps.nonce.claim();
    return replay(deps, existing);
  }
  const pool = await poolOf();
  if (!pool) throw new EnrolError("pool-missing", `The token's pool '${token.pool}' no longer exists.`);
  // Only a new node's enrolment records its nonce with its first write; every other path records it now.
  if (existing) await deps.nonce.claim();

  if (existing && existing.keyId === request.keyId) {
    return startOver(deps, { pool, token, existing, request, parsedSecret: parsed.secret });
  }
  if (existing?.pendingClaim?.keyId === request.keyId) {
    const refusal = tokenRefusal(token, deps.now(), existing.pendingClaim.tokenId === token.tokenId ? "spent-by-this-node" : "must-have-a-use");
    if (refusal) throw refusal;
    // The claim's first answer may have failed on its announcement: repeat it (same id, same data).
    await deps.events.publish([claimAnnouncement(existing, existing.pendingClaim)]);
    return { kind: "awaitingApproval", node: existing, reason: "clone-quarantined" };
  }

  if (existing) return clone(deps, { pool, token, existing, clonedFrom: [existing.nodeId], nodeId, request });
  try {
    // A new machine: its fingerprint rows are inserted with the node, and refused if another node owns one.
    return await createNode(deps, { pool, token, nodeId, request, fingerprints: "insert" });
  } catch (error) {
    if (!(error instanceof RegistryError && error.code === "FingerprintTaken")) throw error;
  }
  const clonedFrom = await liveOwners(registry, pool.name, request.facts, nodeId);
  if (clonedFrom.length > 0) return clone(deps, { pool, token, existing, clonedFrom, nodeId, request });
  return createNode(deps, { pool, token, nodeId, request });
}

/**
 * A first-time enrolment in the fewest requests: the key bound with the request's nonce, the token's use, the node
 * with its fingerprints and slot, its audit entry. Undefined, having changed nothing, when this is not a new node
 * under a new key (the key is bound, the node or its fingerprint exists): the caller then looks at what is there.
 */
async function enrolNew(deps: Deps, c: { token: TokenRecord; pool: PoolRecord; nodeId: string; request: EnrolRequest }): Promise<EnrolOutcome | undefined> {
  const { pool } = c;
  // Labels over the budget refuse a new node (createNode), but not a retry of one enrolled before: the caller reads it.
  if (overBudget(pool, c.token)) return undefined;
  const nonce = deps.nonce.take();
  let redeemed: boolean;
  try {
    redeemed = await deps.registry.nodes.bindNew({ nodeId: c.nodeId, pool: pool.name, keyId: c.request.keyId }, nonce, deps.registry.tokens.useAction(c.token));
  } catch (error) {
    if (!(error instanceof KeyAlreadyBound)) throw error;
    deps.nonce.restore(nonce);
    return undefined;
  }
  try {
    return await createNode(deps, { pool, token: c.token, nodeId: c.nodeId, request: c.request, fingerprints: "insert", indexed: true, redeemed });
  } catch (error) {
    await deps.registry.nodes.releaseKey(c.request.keyId, c.nodeId);
    if (error instanceof RegistryError && (error.code === "FingerprintTaken" || error.code === "NodeExists")) return undefined;
    throw error;
  }
}

/**
 * Same node, same key: answer as before, and make sure a saga exists if one should (a crash may have lost it).
 *
 * The first answer may have failed on the node's announcement (Event Grid down past the client's retries: 500), and
 * the node's retry lands here. Wherever that can be so, the announcement is repeated, with the same id and data, before
 * anything else: a node waiting for an admin (no other request announces it), and an enrolling node with no saga (the
 * announcement comes before the saga's start, so a node whose saga runs was announced). A repeat of an event that did go
 * out is a duplicate a consumer drops by its id; one that fails again fails the retry again, with nothing half done.
 */
async function replay(deps: Base, node: NodeRecord): Promise<EnrolOutcome> {
  if (node.status === "AwaitingApproval") {
    await deps.events.publish([enrolmentAnnouncement(node)]);
    return { kind: "awaitingApproval", node, reason: node.cloneOf ? "clone-quarantined" : "approval-required" };
  }
  if (node.status === "Enrolling") {
    const saga = await deps.workflows.status(node.nodeId);
    if (saga === undefined) await deps.events.publish([enrolmentAnnouncement(node)]);
    // A saga under the node's id that has finished while the node is still Enrolling is an earlier run's: this
    // enrolment's own start failed (the management API answers 500 on a storage error) or came before that run had
    // finished. Its reserve would have moved the node on, so start the run this enrolment is owed — unless a cancel's
    // compensation (or an offboarding) of the node runs: that one owns the node now.
    const other = isRunning(saga) ? undefined : await runningSaga(deps.workflows, node.nodeId, ["compensation", "offboarding"]);
    await ensureSaga(deps, node, { known: saga, restart: other === undefined });
  }
  return { kind: "replayed", node };
}

/**
 * A Failed or Offboarded node with its own key enrols again: a new token use and a fresh saga under the same id.
 *
 * A node cannot undo an admin's say by enrolling again: one an admin rejected, a quarantined clone, and any node whose
 * token or pool asks for approval waits for an admin again (no slot, no saga), as its first enrolment did. A rejected
 * node keeps its rejection as lastError, so the admin sees it was turned away before.
 */
async function startOver(
  deps: Deps,
  c: { pool: PoolRecord; token: TokenRecord; existing: NodeRecord; request: EnrolRequest; parsedSecret: string },
): Promise<EnrolOutcome> {
  const rejected = c.existing.status === "Failed" && c.existing.lastError?.code === "Rejected";
  const approval = rejected || c.existing.cloneOf !== undefined || needsApproval(c.token, c.pool);
  const at = deps.now().toISOString();
  // A saga starts below only without approval; a parked node waits for an admin, whose approval asks the same.
  const wait = approval ? undefined : await onboardingMustWait(deps, c.existing);
  if (wait) throw new EnrolError("saga-finishing", wait, REPLACE_RETRY_AFTER_SECONDS);
  await redeem(deps, c.token);
  const node = await withTokenRefund(deps, c.token.tokenId, () =>
    deps.registry.nodes.update(
      c.existing,
      () => ({
        status: approval ? "AwaitingApproval" : "Enrolling",
        facts: c.request.facts,
        tokenId: c.token.tokenId,
        lastError: rejected ? c.existing.lastError : undefined,
        approvalRequired: approval,
        reenrolledAt: approval ? at : undefined,
      }),
      ACTOR(c.request.keyId),
      "node.reenrol",
      { expect: ["Failed", "Offboarded"] },
    ),
  );
  if (approval) {
    // An admin must hear of it as of a first enrolment; a retry whose first answer failed here repeats it (replay).
    await deps.events.publish([enrolmentAnnouncement(node)]);
    return { kind: "awaitingApproval", node, reason: node.cloneOf !== undefined ? "clone-quarantined" : "approval-required" };
  }
  await ensureSaga(deps, node, { restart: true, pool: c.pool });
  return { kind: "created", node };
}

async function createNode(
  deps: Deps,
  c: {
    pool: PoolRecord;
    token: TokenRecord;
    nodeId: string;
    request: EnrolRequest;
    cloneOf?: string;
    fingerprints?: "insert";
    indexed?: boolean;
    /** The token's use was taken with the key's binding (enrolNew); a failure below gives it back all the same. */
    redeemed?: boolean;
  },
): Promise<EnrolOutcome> {
  const approval = c.cloneOf !== undefined || needsApproval(c.token, c.pool);
  const overflow = overBudget(c.pool, c.token);
  // A token that cannot serve (revoked, expired, used up) is refused as such by redeem, whatever its labels.
  if (overflow && !tokenRefusal(c.token, deps.now(), "must-have-a-use")) {
    // Before anything is spent or written; the refusal is recorded like any other (its nonce), and answered 409: the
    // node can do nothing about it, an admin must trim the pool's labels or taints, or issue a token with fewer.
    await deps.nonce.claim();
    throw overflow;
  }
  if (!c.redeemed) await redeem(deps, c.token);
  let node: NodeRecord;
  try {
    node = await withTokenRefund(deps, c.token.tokenId, () =>
      deps.registry.nodes.create(
        {
          nodeId: c.nodeId,
          pool: c.pool.name,
          status: approval ? "AwaitingApproval" : "Enrolling",
          facts: c.request.facts,
          publicKey: c.request.publicKey,
          keyId: c.request.keyId,
          fingerprint: machineIdentity(c.request.facts),
          tokenId: c.token.tokenId,
          labels: mergeNodeLabels(c.pool.nodeLabels, c.token.labels),
          taints: [...c.pool.nodeTaints, ...c.token.taints],
          createdObjects: [],
          cloneOf: c.cloneOf,
          approvalRequired: approval,
          sagaInstanceId: approval ? undefined : c.nodeId,
          adopt: c.pool.arc.mode === "adopt",
        },
        ACTOR(c.request.keyId),
        { claimFingerprint: c.cloneOf === undefined, fingerprints: c.fingerprints, pool: c.pool, nonce: deps.nonce.take(), indexed: c.indexed },
      ),
    );
  } catch (error) {
    // The same node enrolling twice at once: the other request created it; answer as a retry would.
    if (error instanceof RegistryError && error.code === "NodeExists") {
      const winner = await deps.registry.nodes.getInPool(c.pool.name, c.nodeId);
      if (winner && winner.keyId === c.request.keyId) return replay(deps, winner);
    }
    throw error;
  }
  // The request that created the node announces it (its "run" is the node's creation), before the saga starts: a retry
  // that finds no saga repeats the announcement (replay), so a failed publish is never a lost one.
  await deps.events.publish([enrolmentAnnouncement(node)]);
  if (approval) return { kind: "awaitingApproval", node, reason: c.cloneOf ? "clone-quarantined" : "approval-required" };
  await ensureSaga(deps, node, { pool: c.pool, fresh: true });
  return { kind: "created", node };
}

async function clone(
  deps: Deps,
  c: { pool: PoolRecord; token: TokenRecord; existing: NodeRecord | undefined; clonedFrom: string[]; nodeId: string; request: EnrolRequest },
): Promise<EnrolOutcome> {
  const { registry } = deps;
  const actor = ACTOR(c.request.keyId);
  await registry.audit.write({
    actor,
    action: "node.clone-detected",
    objectType: "node",
    objectId: c.nodeId,
    details: { policy: c.pool.clonePolicy, clonedFrom: c.clonedFrom, keyId: c.request.keyId },
  });
  switch (c.pool.clonePolicy) {
    case "reject":
      throw new EnrolError(
        "clone-rejected",
        `This machine's identity is already enrolled in pool '${c.pool.name}' with another key, and the pool rejects clones.`,
      );
    case "quarantine": {
      if (!c.existing) return createNode(deps, { ...c, cloneOf: c.clonedFrom[0] });
      // One claim waits at a time: a second key never replaces the one an admin is looking at. It is refused, and
      // recorded, until the admin approves or rejects the first.
      if (c.existing.pendingClaim) return refuseClaim(deps, c, new ClaimPendingError(c.existing.pendingClaim.keyId));
      await redeem(deps, c.token);
      const claim = { publicKey: c.request.publicKey, keyId: c.request.keyId, facts: c.request.facts, tokenId: c.token.tokenId, at: deps.now().toISOString() };
      try {
        const node = await withTokenRefund(deps, c.token.tokenId, () =>
          registry.nodes.update(
            c.existing!,
            (n) => {
              if (n.pendingClaim && n.pendingClaim.keyId !== claim.keyId) throw new ClaimPendingError(n.pendingClaim.keyId);
              return { pendingClaim: claim };
            },
            actor,
            "node.clone-quarantined",
          ),
        );
        await deps.events.publish([claimAnnouncement(node, claim)]);
        return { kind: "awaitingApproval", node, reason: "clone-quarantined" };
      } catch (error) {
        if (error instanceof ClaimPendingError) return refuseClaim(deps, c, error);
        throw error;
      }
    }
    case "replace": {
      if (!c.existing) {
        // The machine now enrols under another id (its SMBIOS UUID changed): the node it replaces is offboarded for
        // real — its onboarding stopped, its agent reset, its Arc machine, grants, queue and Node removed, its pool
        // slot freed. Marked first, so a crash before the saga starts leaves a node the sweeper resumes.
        for (const owner of c.clonedFrom) {
          const node = await registry.nodes.getInPool(c.pool.name, owner);
          if (!node) continue;
          if (node.status !== "Offboarding")
            await registry.nodes.update(
              node,
              () => ({ status: "Offboarding", lastError: { code: "ReplacedByClone", message: `replaced by ${c.nodeId}`, at: deps.now().toISOString() } }),
              actor,
              "node.replaced",
            );
          await startOffboarding(deps, owner, { reason: `replaced by clone ${c.nodeId}`, actor });
        }
        return createNode(deps, c);
      }
      return rekey(deps, {
        pool: c.pool,
        node: c.existing,
        claim: { publicKey: c.request.publicKey, keyId: c.request.keyId, facts: c.request.facts, tokenId: c.token.tokenId },
        actor,
        redeemToken: true,
      });
    }
  }
}

class ClaimPendingError extends Error {
  constructor(readonly heldKeyId: string) {
    super(`a claim by key ${heldKeyId} is waiting for an admin`);
  }
}

async function refuseClaim(
  deps: Base,
  c: { pool: PoolRecord; nodeId: string; request: EnrolRequest; token: TokenRecord },
  held: ClaimPendingError,
): Promise<never> {
  await deps.registry.audit.write({
    actor: ACTOR(c.request.keyId),
    action: "node.clone-claim-refused",
    objectType: "node",
    objectId: c.nodeId,
    details: { keyId: c.request.keyId, heldKeyId: held.heldKeyId, tokenId: c.token.tokenId, facts: c.request.facts },
  });
  throw new EnrolError(
    "clone-claim-pending",
    `Another key's claim on this machine's identity is waiting for an admin in pool '${c.pool.name}'; it must be approved or rejected first.`,
  );
}

/**
 * Gives an existing node a new key and onboards it again under the same id (clone policy replace, or an approved
 * quarantined claim). The old saga must be finished first: it is asked to stop and the caller retries shortly.
 */
export async function rekey(
  deps: Base,
  c: {
    pool: PoolRecord;
    node: NodeRecord;
    claim: { publicKey: string; keyId: string; facts: NodeFacts; tokenId: string };
    actor: string;
    redeemToken: boolean;
  },
): Promise<EnrolOutcome> {
  // An offboarding or a compensation still running owns the node's status and objects; a running onboarding of the
  // old key is stopped here.
  const wait = await onboardingMustWait(deps, c.node, { except: "onboarding" });
  if (wait) throw new EnrolError("saga-finishing", wait, REPLACE_RETRY_AFTER_SECONDS);
  const saga = await deps.workflows.status(c.node.nodeId);
  if (isRunning(saga)) {
    await deps.workflows.terminate(c.node.nodeId, `replaced by key ${c.claim.keyId}`);
    throw new EnrolError("clone-replace-pending", "The previous onboarding of this machine is being stopped; retry shortly.", REPLACE_RETRY_AFTER_SECONDS);
  }
  if (c.redeemToken) await redeem(deps, c.claim.tokenId);
  const node = await withTokenRefund(deps, c.redeemToken ? c.claim.tokenId : undefined, () =>
    deps.registry.nodes.update(
      c.node,
      () => ({
        status: "Enrolling",
        publicKey: c.claim.publicKey,
        keyId: c.claim.keyId,
        facts: c.claim.facts,
        tokenId: c.claim.tokenId,
        pendingClaim: undefined,
        lastError: undefined,
        sagaInstanceId: c.node.nodeId,
      }),
      c.actor,
      "node.rekey",
    ),
  );
  await ensureSaga(deps, node, { restart: true, pool: c.pool });
  return { kind: "created", node };
}

/**
 * Starts the node's saga unless one is running; `restart` also replaces a finished one. In an adopt pool the saga
 * starts only once azcmagent's Arc machine has been seen (the Event Grid handler records it and calls this).
 */
export async function ensureSaga(
  deps: Pick<EnrolDeps, "registry" | "workflows" | "now">,
  node: NodeRecord,
  options: { restart?: boolean; pool?: PoolRecord; fresh?: boolean; known?: Awaited<ReturnType<WorkflowClient["status"]>> } = {},
): Promise<void> {
  if (!node.arcMachineId && (await adopts(deps, node, options.pool))) return;
  // `fresh`: the node row was created by this request, so no saga runs under its id (node rows are never deleted, and
  // a pool is deleted only with nothing in flight): start without asking first. `known`: the caller has just asked.
  const status = options.fresh ? undefined : "known" in options ? options.known : await deps.workflows.status(node.nodeId);
  if (status === undefined || (options.restart && !isRunning(status))) {
    const input: OnboardNodeInput = { nodeId: node.nodeId, pool: node.pool, run: newRunId(), startedAt: deps.now().getTime(), waitsForSlot: true };
    await deps.workflows.start(ONBOARD_NODE, { instanceId: node.nodeId, input });
  }
}

/** Whether the node's pool adopts Arc machines (its saga waits for one): recorded on the node, else the pool's. */
export async function adopts(deps: Pick<EnrolDeps, "registry">, node: NodeRecord, pool?: PoolRecord): Promise<boolean> {
  if (node.adopt !== undefined) return node.adopt;
  return (pool ?? (await deps.registry.pools.spec(node.pool)))?.arc.mode === "adopt";
}

/**
 * Takes one use of the token, atomically: under any concurrency a single-use token is redeemed exactly once. Given
 * the token as read (with its ETag), the first try writes without reading it again.
 */
async function redeem(deps: Base, token: string | TokenRecord): Promise<void> {
  let refusal: EnrolError | undefined;
  const tokenId = typeof token === "string" ? token : token.tokenId;
  await deps.registry.tokens.mutate(
    tokenId,
    (t) => {
      refusal = tokenRefusal(t, deps.now(), "must-have-a-use");
      return refusal ? undefined : { uses: t.uses + 1 };
    },
    { known: typeof token === "string" ? undefined : token },
  );
  if (refusal) throw refusal;
}

/** Why a token cannot serve this enrolment, if it cannot: the one rule every path applies. */
function tokenRefusal(t: TokenRecord, now: Date, uses: "must-have-a-use" | "spent-by-this-node"): EnrolError | undefined {
  if (t.revokedAt) return new EnrolError("token-revoked", "The enrolment token was revoked.");
  if (Date.parse(t.expiresAt) <= now.getTime()) return new EnrolError("token-expired", `The enrolment token expired at ${t.expiresAt}.`);
  if (uses === "must-have-a-use" && t.uses >= t.maxUses) {
    return new EnrolError(
      "token-exhausted",
      t.maxUses === 1 ? "The enrolment token has already been used." : `The enrolment token has been used ${t.uses} of ${t.maxUses} times.`,
    );
  }
  return undefined;
}

/**
 * The refusal of a node whose pool's labels or taints and its token's together would not fit on it (the pool changed
 * since the token was made; token creation refuses it up front): stored, every such enrolment would fail with a 5xx.
 */
function overBudget(pool: PoolRecord, token: TokenRecord): RegistryError | undefined {
  const issues = nodeLabelBudgetIssues({ labels: pool.nodeLabels, taints: pool.nodeTaints }, token);
  if (issues.length === 0) return undefined;
  return new RegistryError(
    "Conflict",
    `token '${token.tokenId}' cannot enrol a node into pool '${pool.name}' as the pool is now: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}. ` +
      "An admin must remove labels or taints from the pool, or issue a token with fewer.",
  );
}

/** A new node that waits for an admin takes no slot (it is not in flight until approved). */
function needsApproval(token: TokenRecord, pool: PoolRecord): boolean {
  return token.approvalRequired || pool.approvalPolicy === "always";
}

/** If what follows a redemption fails, give the use back so the node can retry with the same token. */
async function withTokenRefund<T>(deps: Base, tokenId: string | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (tokenId) await deps.registry.tokens.mutate(tokenId, (t) => (t.uses > 0 ? { uses: t.uses - 1 } : undefined));
    throw error;
  }
}

async function liveOwners(registry: Registry, pool: string, facts: NodeFacts, nodeId: string): Promise<string[]> {
  const owners = (await registry.nodes.fingerprintOwners(pool, machineIdentity(facts))).filter((id) => id !== nodeId);
  const live = await Promise.all(owners.map(async (id) => ((await registry.nodes.getInPool(pool, id))?.status === "Offboarded" ? undefined : id)));
  return live.filter((id): id is string => id !== undefined);
}

const announced = (node: NodeRecord) => ({ nodeId: node.nodeId, pool: node.pool, hostname: node.facts.hostname });

/**
 * The event that announced the node's enrolment, rebuilt from its row alone, so a retry repeats it exactly: enrolled
 * (saying whether it waits for an admin), or quarantined when it enrolled as a clone. Rows older than
 * `approvalRequired` were announced before any replay repeated announcements; their status stands in for it.
 */
function enrolmentAnnouncement(node: NodeRecord) {
  const since = node.reenrolledAt ?? node.createdAt;
  const at = { run: since, time: since };
  if (node.cloneOf !== undefined)
    return lifecycleEvent("quarantined", {
      ...at,
      data: { ...announced(node), claimKeyId: node.keyId, reason: `machine identity already enrolled as ${node.cloneOf}` },
    });
  return lifecycleEvent("enrolled", { ...at, data: { ...announced(node), approvalRequired: node.approvalRequired ?? node.status === "AwaitingApproval" } });
}

/** The event that announced a second key's claim on the node's machine identity (its run is the claiming key). */
function claimAnnouncement(node: NodeRecord, claim: NonNullable<NodeRecord["pendingClaim"]>) {
  return lifecycleEvent("quarantined", {
    run: claim.keyId,
    time: claim.at,
    data: { ...announced(node), claimKeyId: claim.keyId, reason: "a second key claimed this node's machine identity" },
  });
}
