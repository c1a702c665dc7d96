import { describe, expect, it } from "vitest";
import { buildSnippets, serverUrls } from "./snippets";

const endpoint = "http://localhost:8000/v1/3f9a0000000000000000000000000000";

describe("buildSnippets", () => {
  it("uses the OpenAI client with base_url for OpenAI limiters", () => {
    const s = buildSnippets({ endpoint, provider: "openai" });
    expect(s.python).toContain("from openai import OpenAI");
    expect(s.python).toContain(`base_url="${endpoint}"`);
    expect(s.python).not.toContain("Azure");
    expect(s.javascript).toContain("import OpenAI from 'openai';");
    expect(s.javascript).toContain(`baseURL: '${endpoint}'`);
  });
  it("uses the AzureOpenAI client for Azure limiters", () => {
    const s = buildSnippets({ endpoint, provider: "azure" });
    expect(s.python).toContain("from openai import AzureOpenAI");
    expect(s.python).toContain(`azure_endpoint="${endpoint}"`);
    expect(s.python).toContain("api_version=");
    expect(s.javascript).toContain("new AzureOpenAI({");
    expect(s.javascript).toContain(`endpoint: '${endpoint}'`);
  });
  it("escapes quotes in the endpoint", () => {
    const s = buildSnippets({ endpoint: "http://h/v1/a'b\"c", provider: "openai" });
    expect(s.javascript).toContain("baseURL: 'http://h/v1/a\\'b\"c'");
    expect(s.python).toContain('base_url="http://h/v1/a\'b\\"c"');
  });
});

describe("buildSnippets, code as API key (the server holds the upstream key)", () => {
  const code = "sk-budget-0123456789abcdef0123456789abcdef";
  const held = `http://budget.example:8000/v1/${code}`;
  it("points the OpenAI client at the server's /v1 with the code as the key", () => {
    const s = buildSnippets({ endpoint: held, provider: "openai", code, codeIsKey: true });
    expect(s.python).toContain('base_url="http://budget.example:8000/v1",');
    expect(s.python).toContain(`api_key="${code}",`);
    expect(s.python).not.toContain("your-openai-api-key");
    expect(s.javascript).toContain("baseURL: 'http://budget.example:8000/v1',");
    expect(s.javascript).toContain(`apiKey: '${code}',`);
    expect(s.curl).toContain("'http://budget.example:8000/v1/chat/completions'");
    expect(s.curl).toContain(`-H 'Authorization: Bearer ${code}'`);
  });
  it("gives the AzureOpenAI client the server's origin and the code as api-key", () => {
    const s = buildSnippets({ endpoint: held, provider: "azure", codeIsKey: true });
    expect(s.python).toContain('azure_endpoint="http://budget.example:8000",');
    expect(s.python).toContain(`api_key="${code}",`);
    expect(s.python).toContain("api_version=");
    expect(s.javascript).toContain("endpoint: 'http://budget.example:8000',");
    expect(s.curl).toContain("'http://budget.example:8000/openai/deployments/your-deployment-name/chat/completions?api-version=");
    expect(s.curl).toContain(`-H 'api-key: ${code}'`);
  });
  it("keeps pass-through snippets for limiters without a stored key, with curl sending the client's key", () => {
    const s = buildSnippets({ endpoint: held, provider: "openai", code });
    expect(s.python).toContain(`base_url="${held}"`);
    expect(s.python).toContain('api_key="your-openai-api-key"');
    expect(s.curl).toContain(`'${held}/chat/completions'`);
    expect(s.curl).toContain("Bearer your-openai-api-key");
  });
  it("finds the server behind a path prefix and quotes for the shell", () => {
    expect(serverUrls(`https://h.example/budget/v1/${code}`)).toEqual({ origin: "https://h.example/budget", v1: "https://h.example/budget/v1", code });
    const s = buildSnippets({ endpoint: "http://h/it's/v1/0123456789abcdef0123456789abcdef", provider: "openai", codeIsKey: true });
    expect(s.curl).toContain("'http://h/it'\\''s/v1/chat/completions'");
  });
});
