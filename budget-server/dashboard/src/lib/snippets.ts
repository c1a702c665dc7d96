// Ready-to-paste client code for a limiter's proxy endpoint.

export interface SnippetInput {
  endpoint: string;
  provider: string;
}

export interface Snippets {
  python: string;
  javascript: string;
}

/** The Azure OpenAI API version the snippets use. */
export const AZURE_API_VERSION = "2024-10-21";

function pyString(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid Python string literal for URLs
}

function jsString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export function buildSnippets({ endpoint, provider }: SnippetInput): Snippets {
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
        "",
        "response = client.chat.completions.create(",
        '    model="your-deployment-name",',
        '    messages=[{"role": "user", "content": "Hello!"}],',
        ")",
        "print(response.choices[0].message.content)",
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
        "",
        "const response = await client.chat.completions.create({",
        "  model: 'your-deployment-name',",
        "  messages: [{ role: 'user', content: 'Hello!' }],",
        "});",
        "console.log(response.choices[0].message.content);",
      ].join("\n"),
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
      "",
      "response = client.chat.completions.create(",
      '    model="gpt-4o",',
      '    messages=[{"role": "user", "content": "Hello!"}],',
      ")",
      "print(response.choices[0].message.content)",
    ].join("\n"),
    javascript: [
      "import OpenAI from 'openai';",
      "",
      "const client = new OpenAI({",
      "  apiKey: 'your-openai-api-key',",
      `  baseURL: ${jsString(endpoint)}, // your limiter endpoint`,
      "});",
      "",
      "const response = await client.chat.completions.create({",
      "  model: 'gpt-4o',",
      "  messages: [{ role: 'user', content: 'Hello!' }],",
      "});",
      "console.log(response.choices[0].message.content);",
    ].join("\n"),
  };
}
