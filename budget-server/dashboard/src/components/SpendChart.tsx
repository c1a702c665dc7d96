import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { formatCount, formatMoney, formatMoneyShort } from "../lib/format";
import { bucketLabel, type Bucket, type ChartPoint } from "../lib/timeseries";

interface TooltipPayload {
  payload: ChartPoint;
}

function ChartTooltip({ active, payload, bucket }: { active?: boolean; payload?: TooltipPayload[]; bucket: Bucket }) {
  if (!active || !payload?.length) return null;
  const p = payload[0]!.payload;
  const when = new Date(p.t);
  const title =
    bucket === "day"
      ? when.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric" })
      : when.toLocaleString("en-US", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return (
    <div className="rounded-lg border bg-white px-3 py-2 text-xs shadow-md">
      <div className="mb-1 font-medium">{title}</div>
      <div className="grid grid-cols-[auto_auto] gap-x-3 gap-y-0.5 tabular">
        <span className="text-muted-foreground">Cost</span>
        <span className="text-right font-medium">{formatMoney(p.cost)}</span>
        <span className="text-muted-foreground">Requests</span>
        <span className="text-right">{formatCount(p.requests)}</span>
        <span className="text-muted-foreground">Tokens</span>
        <span className="text-right">{formatCount(p.total_tokens)}</span>
      </div>
    </div>
  );
}

/** Spend per bucket as bars (each bar is the cost of one minute, hour or day). */
export function SpendChart({ points, bucket, height = 240, testId }: { points: ChartPoint[]; bucket: Bucket; height?: number; testId?: string }) {
  const empty = points.every((p) => p.cost === 0 && p.requests === 0);
  const max = Math.max(0, ...points.map((p) => p.cost));
  // Y labels of sub-cent amounts are long ("$0.000075"): size the axis for them.
  const yWidth = max > 0 && max < 0.01 ? 84 : Math.max(48, formatMoneyShort(max).length * 7 + 12);
  return (
    <div className="relative" style={{ height }} data-testid={testId}>
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={points} margin={{ top: 8, right: 8, left: 0, bottom: 0 }} barCategoryGap={points.length > 60 ? 1 : "20%"}>
          <CartesianGrid vertical={false} stroke="#e4e4e7" strokeDasharray="3 3" />
          <XAxis
            dataKey="t"
            tickFormatter={(t: number) => bucketLabel(t, bucket)}
            tick={{ fontSize: 11, fill: "#71717a" }}
            tickLine={false}
            axisLine={false}
            minTickGap={28}
          />
          <YAxis tickFormatter={(v: number) => formatMoneyShort(v)} tick={{ fontSize: 11, fill: "#71717a" }} tickLine={false} axisLine={false} width={yWidth} />
          <Tooltip content={<ChartTooltip bucket={bucket} />} cursor={{ fill: "#f4f4f5" }} />
          <Bar dataKey="cost" fill="#18181b" radius={[3, 3, 0, 0]} isAnimationActive={false} minPointSize={(v: unknown) => (typeof v === "number" && v > 0 ? 2 : 0)} />
        </BarChart>
      </ResponsiveContainer>
      {empty && (
        <div className="pointer-events-none absolute inset-0 flex items-center justify-center text-sm text-muted-foreground">No spend in this range yet</div>
      )}
    </div>
  );
}
