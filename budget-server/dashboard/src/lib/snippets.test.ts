import { describe, expect, it } from "vitest";
import { buildSnippets } from "./snippets";

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
