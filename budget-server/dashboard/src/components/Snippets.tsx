import { Code2 } from "lucide-react";
import { useMemo, useState } from "react";
import { buildSnippets } from "../lib/snippets";
import { cn } from "../lib/utils";
import { CopyButton } from "./CopyButton";

/** Ready-to-paste Python / JavaScript for a limiter endpoint, in a collapsible section. */
export function SnippetsPanel({ endpoint, provider }: { endpoint: string; provider: string }) {
  const snippets = useMemo(() => buildSnippets({ endpoint, provider }), [endpoint, provider]);
  const [lang, setLang] = useState<"python" | "javascript">("python");
  return (
    <details className="group min-w-0 rounded-lg border bg-zinc-50/60" data-testid="snippets">
      <summary className="flex cursor-pointer select-none items-center gap-2 px-3 py-2 text-xs font-medium text-muted-foreground hover:text-foreground [&::-webkit-details-marker]:hidden">
        <Code2 className="h-3.5 w-3.5" />
        Snippets
        <span className="ml-auto text-[11px]">{provider === "azure" ? "AzureOpenAI client" : "OpenAI SDK"} · Python, JS</span>
      </summary>
      <div className="border-t px-3 pb-3 pt-2">
        <div className="mb-2 flex items-center gap-1" role="tablist" aria-label="Language">
          {(["python", "javascript"] as const).map((l) => (
            <button
              key={l}
              type="button"
              role="tab"
              aria-selected={lang === l}
              onClick={() => setLang(l)}
              className={cn(
                "rounded-md px-2 py-1 text-xs font-medium transition-colors",
                lang === l ? "bg-white text-foreground shadow-sm ring-1 ring-zinc-200" : "text-muted-foreground hover:text-foreground",
              )}
            >
              {l === "python" ? "Python" : "JavaScript"}
            </button>
          ))}
          <CopyButton text={snippets[lang]} className="ml-auto" testId="copy-snippet" />
        </div>
        <pre className="max-h-64 overflow-auto rounded-md bg-zinc-950 p-3 text-[11px] leading-relaxed text-zinc-100" data-testid={`snippet-${lang}`}>
          <code>{snippets[lang]}</code>
        </pre>
      </div>
    </details>
  );
}
