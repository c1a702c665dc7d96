import { Code2, KeyRound } from "lucide-react";
import { useMemo, useState } from "react";
import { buildSnippets, serverUrls, SNIPPET_LANGUAGES, type SnippetLanguage } from "../lib/snippets";
import { cn } from "../lib/utils";
import { CopyButton } from "./CopyButton";

const LANGUAGE_LABEL: Record<SnippetLanguage, string> = { python: "Python", javascript: "Node.js", curl: "curl" };

/**
 * Ready-to-paste client setup for a limiter, in a collapsible section. With an upstream key
 * held by the server (`credentialName`), the limiter code is the client's API key and
 * `base_url` is the server's `/v1`; without one, the client sends its own key to the
 * limiter's endpoint.
 */
export function SnippetsPanel({ endpoint, provider, code, credentialName }: { endpoint: string; provider: string; code?: string; credentialName?: string | null }) {
  const codeIsKey = !!credentialName;
  const snippets = useMemo(() => buildSnippets({ endpoint, provider, code, codeIsKey }), [endpoint, provider, code, codeIsKey]);
  const [lang, setLang] = useState<SnippetLanguage>("python");
  const client = provider === "azure" ? "AzureOpenAI client" : "OpenAI SDK";
  const keyName = provider === "azure" ? "Azure key" : "OpenAI key";
  return (
    <details className="group min-w-0 rounded-lg border bg-zinc-50/60" data-testid="snippets" data-mode={codeIsKey ? "code-as-key" : "pass-through"}>
      <summary className="flex cursor-pointer select-none items-center gap-2 px-3 py-2 text-xs font-medium text-muted-foreground hover:text-foreground [&::-webkit-details-marker]:hidden">
        <Code2 className="h-3.5 w-3.5" />
        Snippets
        <span className="ml-auto text-[11px]">
          {client} · {codeIsKey ? "code as API key" : "your own key"}
        </span>
      </summary>
      <div className="border-t px-3 pb-3 pt-2">
        {codeIsKey ? (
          <p className="mb-2 flex items-start gap-1.5 text-[11px] text-muted-foreground" data-testid="snippets-note">
            <KeyRound className="mt-0.5 h-3 w-3 shrink-0" />
            <span>
              The limiter code is the API key: the client needs no {keyName}, the server sends <span className="font-medium text-foreground">{credentialName}</span>. Base URL{" "}
              <code className="font-mono">{provider === "azure" ? serverUrls(endpoint, code).origin : serverUrls(endpoint, code).v1}</code>.
            </span>
          </p>
        ) : (
          <p className="mb-2 text-[11px] text-muted-foreground" data-testid="snippets-note">
            Pass-through: the client sends its own {keyName} to the limiter endpoint.
          </p>
        )}
        <div className="mb-2 flex items-center gap-1" role="tablist" aria-label="Language">
          {SNIPPET_LANGUAGES.map((l) => (
            <button
              key={l}
              type="button"
              role="tab"
              aria-selected={lang === l}
              data-testid={`snippet-tab-${l}`}
              onClick={() => setLang(l)}
              className={cn(
                "rounded-md px-2 py-1 text-xs font-medium transition-colors",
                lang === l ? "bg-white text-foreground shadow-sm ring-1 ring-zinc-200" : "text-muted-foreground hover:text-foreground",
              )}
            >
              {LANGUAGE_LABEL[l]}
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
