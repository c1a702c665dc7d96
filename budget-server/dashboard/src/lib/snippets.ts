// Ready-to-paste client code for a limiter, in the mode it is used:
// - pass-through (no credential on the server): base_url = the limiter's endpoint
//   (`…/v1/{code}`), and the client sends its own OpenAI or Azure key;
// - code as API key (the server holds the upstream key): base_url = `http://HOST/v1` (Azure:
//   azure_endpoint = `http://HOST`) and the limiter code is the API key, so the client holds
//   no OpenAI key at all.

export interface SnippetInput {
  /** The limiter's proxy endpoint, `http://HOST/v1/{code}`. */
  endpoint: string;
  provider: string;
  /** The limiter code; read from the endpoint's last segment when absent. */
  code?: string;
  /** The server holds the upstream key (the limiter has a credential): the code is the API key. */
  codeIsKey?: boolean;
}

export interface Snippets {
  python: string;
  javascript: string;
  curl: string;
}

export type SnippetLanguage = keyof Snippets;
export const SNIPPET_LANGUAGES: readonly SnippetLanguage[] = ["python", "javascript", "curl"];

/** The Azure OpenAI API version the snippets use. */
export const AZURE_API_VERSION = "2024-10-21";

function pyString(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid Python string literal for URLs
}

function jsString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function shString(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/**
 * Where the code-as-key mode points, from a limiter endpoint `http://HOST/v1/{code}`:
 * `v1` = `http://HOST/v1` (OpenAI's layout) and `origin` = `http://HOST` (Azure's endpoint).
 */
export function serverUrls(endpoint: string, code?: string): { origin: string; v1: string; code: string } {
  const e = endpoint.replace(/\/+$/, "");
  const c = code ?? e.slice(e.lastIndexOf("/") + 1);
  const suffix = `/v1/${c}`;
  const origin = e.endsWith(suffix) ? e.slice(0, -suffix.length) : e.replace(/\/v1\/[^/]*$/, "");
  return { origin, v1: `${origin}/v1`, code: c };
}

const CHAT_BODY = `{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}`;
const AZURE_CHAT_BODY = `{"messages": [{"role": "user", "content": "Hello!"}]}`;

function pythonCall(model: string): string[] {
  return [
    "",
    "response = client.chat.completions.create(",
    `    model=${pyString(model)},`,
    '    messages=[{"role": "user", "content": "Hello!"}],',
    ")",
    "print(response.choices[0].message.content)",
  ];
}

function jsCall(model: string): string[] {
  return [
    "",
    "const response = await client.chat.completions.create({",
    `  model: ${jsString(model)},`,
    "  messages: [{ role: 'user', content: 'Hello!' }],",
    "});",
    "console.log(response.choices[0].message.content);",
  ];
}

function curl(url: string, header: string, body: string): string {
  return [`curl ${shString(url)} \\`, `  -H ${shString(header)} \\`, `  -H 'Content-Type: application/json' \\`, `  -d ${shString(body)}`].join("\n");
}

/** Snippets for a limiter whose upstream key the server holds: the code is the API key. */
function codeAsKey({ endpoint, provider, code }: SnippetInput): Snippets {
  const u = serverUrls(endpoint, code);
  if (provider === "azure") {
    return {
      python: [
        "from openai import AzureOpenAI",
        "",
        "# The limiter code is the API key; the server sends its own Azure key.",
        "client = AzureOpenAI(",
        `    azure_endpoint=${pyString(u.origin)},`,
        `    api_key=${pyString(u.code)},  # your limiter code`,
        `    api_version=${pyString(AZURE_API_VERSION)},`,
        ")",
        ...pythonCall("your-deployment-name"),
      ].join("\n"),
      javascript: [
        "import { AzureOpenAI } from 'openai';",
        "",
        "// The limiter code is the API key; the server sends its own Azure key.",
        "const client = new AzureOpenAI({",
        `  endpoint: ${jsString(u.origin)},`,
        `  apiKey: ${jsString(u.code)}, // your limiter code`,
        `  apiVersion: ${jsString(AZURE_API_VERSION)},`,
        "  deployment: 'your-deployment-name',",
        "});",
        ...jsCall("your-deployment-name"),
      ].join("\n"),
      curl: curl(`${u.origin}/openai/deployments/your-deployment-name/chat/completions?api-version=${AZURE_API_VERSION}`, `api-key: ${u.code}`, AZURE_CHAT_BODY),
    };
  }
  return {
    python: [
      "from openai import OpenAI",
      "",
      "# The limiter code is the API key; the server sends its own OpenAI key.",
      "client = OpenAI(",
      `    base_url=${pyString(u.v1)},`,
      `    api_key=${pyString(u.code)},  # your limiter code`,
      ")",
      ...pythonCall("gpt-4o"),
    ].join("\n"),
    javascript: [
      "import OpenAI from 'openai';",
      "",
      "// The limiter code is the API key; the server sends its own OpenAI key.",
      "const client = new OpenAI({",
      `  baseURL: ${jsString(u.v1)},`,
      `  apiKey: ${jsString(u.code)}, // your limiter code`,
      "});",
      ...jsCall("gpt-4o"),
    ].join("\n"),
    curl: curl(`${u.v1}/chat/completions`, `Authorization: Bearer ${u.code}`, CHAT_BODY),
  };
}

/** Snippets for a pass-through limiter: its endpoint as the base URL, and the client's own key. */
function passThrough({ endpoint, provider }: SnippetInput): Snippets {
  if (provider === "azure") {
    return {
      python: [
        "from openai import AzureOpenAI",
        "",
        "client = AzureOpenAI(",
        '    api_key="your-azure-openai-key",',
        `    api_version=${pyString(AZURE_API_VERSION)},`,
        `    azure_endpoint=${pyString(endpoint)},  # your limiter endpoint`,
        ")",
        ...pythonCall("your-deployment-name"),
      ].join("\n"),
      javascript: [
        "import { AzureOpenAI } from 'openai';",
        "",
        "const client = new AzureOpenAI({",
        "  apiKey: 'your-azure-openai-key',",
        `  apiVersion: ${jsString(AZURE_API_VERSION)},`,
        `  endpoint: ${jsString(endpoint)}, // your limiter endpoint`,
        "  deployment: 'your-deployment-name',",
        "});",
        ...jsCall("your-deployment-name"),
      ].join("\n"),
      curl: curl(
        `${endpoint}/openai/deployments/your-deployment-name/chat/completions?api-version=${AZURE_API_VERSION}`,
        "api-key: your-azure-openai-key",
        AZURE_CHAT_BODY,
      ),
    };
  }
  return {
    python: [
      "from openai import OpenAI",
      "",
      "client = OpenAI(",
      '    api_key="your-openai-api-key",',
      `    base_url=${pyString(endpoint)},  # your limiter endpoint`,
      ")",
      ...pythonCall("gpt-4o"),
    ].join("\n"),
    javascript: [
      "import OpenAI from 'openai';",
      "",
      "const client = new OpenAI({",
      "  apiKey: 'your-openai-api-key',",
      `  baseURL: ${jsString(endpoint)}, // your limiter endpoint`,
      "});",
      ...jsCall("gpt-4o"),
    ].join("\n"),
    curl: curl(`${endpoint}/chat/completions`, "Authorization: Bearer your-openai-api-key", CHAT_BODY),
  };
}

export function buildSnippets(input: SnippetInput): Snippets {
  return input.codeIsKey ? codeAsKey(input) : passThrough(input);
}
