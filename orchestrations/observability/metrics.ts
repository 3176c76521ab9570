/**
 * The service's metrics (README "Observing a fleet" says what each means). Instruments are looked up from the global
 * meter provider at each record: the API hands out no-op instruments before a provider is registered and never
 * upgrades them, and the provider is registered at start-up, after modules like this one have loaded.
 */
import { metrics, type Attributes, type Counter, type Histogram, type Meter, type MeterProvider } from "@opentelemetry/api";

export const METER_NAME = "flexnode-onboarding";

/** Bucket bounds in seconds: node steps take seconds to minutes, an onboarding minutes. */
const STEP_BOUNDS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
const READY_BOUNDS = [5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600];

interface Instruments {
  enrolments: Counter;
  sagas: Counter;
  stepDuration: Histogram;
  armThrottles: Counter;
  timeToReady: Histogram;
}

let cached: { provider: MeterProvider; instruments: Instruments } | undefined;

function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (cached?.provider !== provider) cached = { provider, instruments: create(provider.getMeter(METER_NAME)) };
  return cached.instruments;
}

function create(meter: Meter): Instruments {
  return {
    enrolments: meter.createCounter("flexnode.enrolments", { description: "Enrolment requests by outcome", unit: "{enrolment}" }),
    sagas: meter.createCounter("flexnode.sagas", { description: "Finished sagas by outcome and the phase they ended in", unit: "{saga}" }),
    stepDuration: meter.createHistogram("flexnode.step.duration", {
      description: "Node step attempts as the agent timed them",
      unit: "s",
      advice: { explicitBucketBoundaries: STEP_BOUNDS },
    }),
    armThrottles: meter.createCounter("flexnode.arm.throttles", { description: "ARM responses 429 (throttled) to the service", unit: "{response}" }),
    timeToReady: meter.createHistogram("flexnode.onboarding.time_to_ready", {
      description: "From the onboarding saga's start to the node marked Ready",
      unit: "s",
      advice: { explicitBucketBoundaries: READY_BOUNDS },
    }),
  };
}

/** `created`, `replayed`, `awaitingApproval`, or the refusal's code (`token-expired`, `clone-rejected`, …). */
export function recordEnrolment(outcome: string, pool?: string): void {
  instruments().enrolments.add(1, withPool({ "flexnode.enrol.outcome": outcome }, pool));
}

export interface SagaEnd {
  saga: string;
  /** `Ready`, `Failed`, `Offboarded`, … (the saga output's status). */
  outcome: string;
  /** The phase it failed in, or the last phase when it succeeded. */
  phase: string;
  errorCode?: string;
  /** Orchestration time from the saga's start to its end. */
  durationMs: number;
}

export function recordSagaEnd(end: SagaEnd): void {
  const attributes: Attributes = { "flexnode.saga": end.saga, "flexnode.saga.outcome": end.outcome, "flexnode.saga.phase": end.phase };
  if (end.errorCode) attributes["error.type"] = end.errorCode;
  instruments().sagas.add(1, attributes);
  if (end.saga === "onboardNode" && end.outcome === "Ready") instruments().timeToReady.record(end.durationMs / 1000, { "flexnode.saga": end.saga });
}

export function recordStepDuration(step: { stepId: string; outcome: string; seconds: number; errorCode?: string }): void {
  const attributes: Attributes = { "flexnode.step": step.stepId, "flexnode.step.outcome": step.outcome };
  if (step.errorCode) attributes["error.type"] = step.errorCode;
  instruments().stepDuration.record(step.seconds, attributes);
}

export function recordArmThrottle(attributes: { method: string; resourceType: string }): void {
  instruments().armThrottles.add(1, { "http.request.method": attributes.method, "flexnode.arm.resource_type": attributes.resourceType });
}

function withPool(attributes: Attributes, pool: string | undefined): Attributes {
  return pool ? { ...attributes, "flexnode.pool": pool } : attributes;
}
