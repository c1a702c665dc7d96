import { cn } from "../../lib/utils";
import { barWidth, usageLevel } from "../../lib/usage";

const LEVEL_CLASS = { ok: "bg-emerald-500", warning: "bg-amber-500", exceeded: "bg-red-500" } as const;

/** A usage bar: width from the percentage, colour from the level (green / amber / red). */
export function UsageBar({ percent, className, label, ...rest }: { percent: number; className?: string; label: string } & Record<`data-${string}`, string>) {
  const level = usageLevel(percent);
  const width = barWidth(percent);
  return (
    <div
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(Math.min(100, Math.max(0, percent)))}
      data-level={level}
      className={cn("h-2 w-full overflow-hidden rounded-full bg-zinc-100", className)}
      {...rest}
    >
      <div className={cn("h-full rounded-full transition-all duration-500", LEVEL_CLASS[level])} style={{ width: `${width}%` }} />
    </div>
  );
}
