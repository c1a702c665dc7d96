import { Check, Copy } from "lucide-react";
import { useEffect, useState } from "react";
import { copyText } from "../lib/clipboard";
import { cn } from "../lib/utils";
import { Button } from "./ui/button";
import { useToast } from "./ui/toast";

/** Copies `text`; shows "Copied" for two seconds. Failures are reported, never swallowed. */
export function CopyButton({ text, label = "Copy", className, testId }: { text: string; label?: string; className?: string; testId?: string }) {
  const [copied, setCopied] = useState(false);
  const toast = useToast();
  useEffect(() => {
    if (!copied) return;
    const t = window.setTimeout(() => setCopied(false), 2000);
    return () => window.clearTimeout(t);
  }, [copied]);
  return (
    <Button
      variant="outline"
      size="sm"
      className={cn("h-7 shrink-0 px-2 text-xs", className)}
      data-testid={testId}
      aria-label={copied ? "Copied" : label}
      onClick={async () => {
        try {
          await copyText(text);
          setCopied(true);
        } catch (e) {
          toast({ title: "Copy failed", description: e instanceof Error ? e.message : String(e), variant: "error" });
        }
      }}
    >
      {copied ? <Check className="text-emerald-600" /> : <Copy />}
      <span aria-live="polite">{copied ? "Copied" : label}</span>
    </Button>
  );
}
