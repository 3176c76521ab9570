/**
 * Where the service's spans and metrics go, decided once at start-up from the settings (README "Observing a fleet"):
 *
 *   APPLICATIONINSIGHTS_CONNECTION_STRING  Azure Monitor (@azure/monitor-opentelemetry), as the Functions host does with
 *                                          `telemetryMode: OpenTelemetry`; Entra ingestion when
 *                                          APPLICATIONINSIGHTS_AUTHENTICATION_STRING names a managed identity
 *   OTEL_EXPORTER_OTLP_ENDPOINT            OTLP over HTTP (any collector; the standard OTEL_* variables apply)
 *   FLEXNODE_TELEMETRY=console             spans and metric points printed to stdout, a line each (the sandbox)
 *   none of these                          nothing: the API stays a no-op
 *
 * Every mode registers the Azure SDK instrumentation (ARM, Service Bus, Tables and Event Grid calls become spans under
 * the activity that made them) and, on the real host, the Functions instrumentation, which parents each invocation
 * on the host's trace context and must be registered before any function is.
 */
import { createRequire } from "node:module";
import { context, metrics, propagation, trace } from "@opentelemetry/api";
import type { MetricReader } from "@opentelemetry/sdk-metrics";
import * as z from "zod";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";

export type TelemetryMode = "azure-monitor" | "otlp" | "console" | "off";

export interface Telemetry {
  mode: TelemetryMode;
  /** Flushes what is buffered and unregisters the providers. */
  shutdown(): Promise<void>;
}

const require = createRequire(import.meta.url);

const unsetIfEmpty = (v: unknown) => (v === "" ? undefined : v);

/** The settings telemetry reads (README "App settings"); empty counts as unset, as everywhere else. */
const TelemetrySettings = z.object({
  APPLICATIONINSIGHTS_CONNECTION_STRING: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(/InstrumentationKey=/i, "must be an Application Insights connection string")
      .optional(),
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess(unsetIfEmpty, z.url({ protocol: /^https?$/ }).optional()),
  FLEXNODE_TELEMETRY: z.preprocess(unsetIfEmpty, z.enum(["console", "off"]).optional()),
});

/** The mode the settings ask for; a malformed setting is named on stderr and telemetry stays off (the app still runs). */
export function telemetryModeOf(env: Record<string, string | undefined>): TelemetryMode {
  const parsed = TelemetrySettings.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) process.stderr.write(`telemetry off: setting ${issue.path.join(".")} ${issue.message}\n`);
    return "off";
  }
  const settings = parsed.data;
  if (settings.APPLICATIONINSIGHTS_CONNECTION_STRING) return "azure-monitor";
  if (settings.OTEL_EXPORTER_OTLP_ENDPOINT) return "otlp";
  if (settings.FLEXNODE_TELEMETRY === "console") return "console";
  return "off";
}

/** Starts telemetry as the settings say. `functionsHost`: running under the real Functions host (functions/index.ts). */
export async function startTelemetry(env: Record<string, string | undefined>, options: { functionsHost?: boolean } = {}): Promise<Telemetry> {
  const mode = telemetryModeOf(env);
  switch (mode) {
    case "off":
      return { mode, shutdown: async () => {} };
    case "azure-monitor": {
      const { useAzureMonitor, shutdownAzureMonitor } = await import("@azure/monitor-opentelemetry");
      useAzureMonitor({
        azureMonitorExporterOptions: { connectionString: env["APPLICATIONINSIGHTS_CONNECTION_STRING"], credential: await entraCredential(env) },
        instrumentationOptions: { azureSdk: { enabled: true }, http: { enabled: true } },
      });
      await registerInstrumentations(options.functionsHost === true);
      return { mode, shutdown: () => shutdownAzureMonitor() };
    }
    case "otlp": {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
      const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-http");
      const { BatchSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
      const { PeriodicExportingMetricReader } = await import("@opentelemetry/sdk-metrics");
      return {
        mode,
        ...(await installTelemetry({
          spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
          metricReaders: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() })],
          functionsHost: options.functionsHost === true,
        })),
      };
    }
    case "console": {
      const { SimpleSpanProcessor } = await import("@opentelemetry/sdk-trace-base");
      const { PeriodicExportingMetricReader } = await import("@opentelemetry/sdk-metrics");
      const { ConsoleMetricLines, ConsoleSpanLines } = await import("./console-lines.js");
      return {
        mode,
        ...(await installTelemetry({
          spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanLines())],
          metricReaders: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricLines(), exportIntervalMillis: 10_000 })],
          functionsHost: options.functionsHost === true,
        })),
      };
    }
  }
}

export interface TelemetryParts {
  spanProcessors: SpanProcessor[];
  metricReaders: MetricReader[];
  functionsHost?: boolean;
}

/**
 * Registers a tracer provider (AsyncLocalStorage context, W3C propagation) and a meter provider with these
 * processors and readers, plus the instrumentations. The tests pass in-memory ones.
 */
export async function installTelemetry(parts: TelemetryParts): Promise<Pick<Telemetry, "shutdown">> {
  const { NodeTracerProvider } = await import("@opentelemetry/sdk-trace-node");
  const { MeterProvider } = await import("@opentelemetry/sdk-metrics");
  const { resourceFromAttributes } = await import("@opentelemetry/resources");
  const resource = resourceFromAttributes({ "service.name": "flexnode-onboarding" });
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: parts.spanProcessors });
  tracerProvider.register();
  const meterProvider = new MeterProvider({ resource, readers: parts.metricReaders });
  metrics.setGlobalMeterProvider(meterProvider);
  await registerInstrumentations(parts.functionsHost === true);
  return {
    shutdown: async () => {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

let instrumented = false;

/** Once per process: an instrumentation enables itself when constructed, and a second one would patch twice. */
async function registerInstrumentations(functionsHost: boolean): Promise<void> {
  if (instrumented) return;
  instrumented = true;
  const { createAzureSdkInstrumentation } = await import("@azure/opentelemetry-instrumentation-azure-sdk");
  createAzureSdkInstrumentation();
  // The instrumentation sets @azure/core-tracing's tracer when the module is required; this ESM app imports it, which
  // the require hook never sees. Requiring it here sets the tracer in the state its ESM and CommonJS builds share.
  require("@azure/core-tracing");
  // The distro's HTTP instrumentation (Azure Monitor mode) wraps node:http(s) when they are required; the imports share
  // those module objects, so requiring them here makes the wrapping apply to this app's calls too.
  require("node:http");
  require("node:https");
  if (functionsHost) {
    const { AzureFunctionsInstrumentation } = await import("@azure/functions-opentelemetry-instrumentation");
    new AzureFunctionsInstrumentation();
    // Likewise: requiring @azure/functions (the CommonJS instance the imports share) applies its patch.
    require("@azure/functions");
  }
}

/** Entra ingestion (the component has local auth disabled): the credential of the identity the setting names. */
async function entraCredential(env: Record<string, string | undefined>) {
  const clientId = /(?:^|;)\s*ClientId=([^;]+)/i.exec(env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] ?? "")?.[1];
  if (!clientId) return undefined;
  const { ManagedIdentityCredential } = await import("@azure/identity");
  return new ManagedIdentityCredential({ clientId });
}
