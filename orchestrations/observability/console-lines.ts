/**
 * `FLEXNODE_TELEMETRY=console`: a span or a metric point per line, short enough to follow next to the sandbox's own
 * progress (the SDK's console exporters print each span as a multi-line object).
 *
 *   [span] 4bf92f35/00f067aa activity onboard_putArcMachine 12ms flexnode.node=fn-… flexnode.activity=onboard_putArcMachine
 *   [metric] flexnode.sagas {flexnode.saga=onboardNode flexnode.saga.outcome=Ready flexnode.saga.phase=done} 1
 */
import { ExportResultCode, hrTimeToMilliseconds, type ExportResult } from "@opentelemetry/core";
import { AggregationTemporality, DataPointType, type PushMetricExporter, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

type Write = (line: string) => void;
const stdout: Write = (line) => void process.stdout.write(`${line}\n`);

const attrs = (a: Record<string, unknown>): string =>
  Object.entries(a)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");

export class ConsoleSpanLines implements SpanExporter {
  constructor(private readonly write: Write = stdout) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const s of spans) {
      const { traceId, spanId } = s.spanContext();
      const ms = Math.round(hrTimeToMilliseconds(s.duration));
      const failed = s.status.code === 2 ? ` FAILED(${s.status.message ?? ""})` : "";
      this.write(`[span] ${traceId.slice(0, 8)}/${spanId.slice(0, 8)} ${s.name} ${ms}ms${failed} ${attrs(s.attributes)}`);
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  async shutdown(): Promise<void> {}
}

export class ConsoleMetricLines implements PushMetricExporter {
  constructor(private readonly write: Write = stdout) {}

  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    for (const m of metrics.scopeMetrics.flatMap((s) => s.metrics)) {
      for (const p of m.dataPoints) {
        const value =
          m.dataPointType === DataPointType.HISTOGRAM
            ? (({ count, sum }: { count: number; sum?: number }) => `count=${count} sum=${(sum ?? 0).toFixed(3)}${m.descriptor.unit}`)(
                p.value as { count: number; sum?: number },
              )
            : String(p.value as number);
        this.write(`[metric] ${m.descriptor.name} {${attrs(p.attributes)}} ${value}`);
      }
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }

  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
