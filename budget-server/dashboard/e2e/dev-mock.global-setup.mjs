// Vitest global setup: starts the dev mock (dev-mock-api.mjs) on free ports for
// src/lib/dev-mock.test.ts, which checks its answers against the server's OpenAPI document:
// once seeded, once as a server without SECRETS_KEY.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts the dev mock with `flags` on a free port; resolves to its URL and a stop function. */
async function start(flags) {
  const port = await freePort();
  const mock = spawn(process.execPath, [fileURLToPath(new URL("./dev-mock-api.mjs", import.meta.url)), "--port", String(port), ...flags], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((resolve, reject) => {
    mock.once("exit", (code) => reject(new Error(`dev mock exited (${code})`)));
    mock.stdout.once("data", resolve);
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => mock.kill() };
}

export async function setup({ provide }) {
  const seeded = await start(["--seed"]);
  // A server without SECRETS_KEY, for the 400 that says how to set it.
  const keyless = await start(["--no-secrets-key"]);
  provide("devMockUrl", seeded.url);
  provide("devMockNoSecretsUrl", keyless.url);
  return () => {
    seeded.stop();
    keyless.stop();
  };
}
