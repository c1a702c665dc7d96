// Vitest global setup: starts the dev mock (dev-mock-api.mjs, seeded) on a free port for
// src/lib/dev-mock.test.ts, which checks its answers against the server's OpenAPI document.
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

export async function setup({ provide }) {
  const port = await freePort();
  const mock = spawn(process.execPath, [fileURLToPath(new URL("./dev-mock-api.mjs", import.meta.url)), "--port", String(port), "--seed"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((resolve, reject) => {
    mock.once("exit", (code) => reject(new Error(`dev mock exited (${code})`)));
    mock.stdout.once("data", resolve);
  });
  provide("devMockUrl", `http://127.0.0.1:${port}`);
  return () => {
    mock.kill();
  };
}
