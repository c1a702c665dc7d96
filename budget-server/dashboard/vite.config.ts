import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

// The dev server proxies the API to a budget-server on :8000 (override with BUDGET_SERVER).
const target = process.env.BUDGET_SERVER ?? "http://localhost:8000";

export default defineConfig({
  base: "/",
  plugins: [react()],
  resolve: {
    // The server's CSP forbids inline <style>; see src/lib/style-singleton.ts.
    alias: [{ find: /^react-style-singleton$/, replacement: fileURLToPath(new URL("./src/lib/style-singleton.ts", import.meta.url)) }],
  },
  server: {
    port: 5173,
    proxy: {
      "/api": { target, changeOrigin: true },
      "/v1": { target, changeOrigin: true },
      "/health": { target, changeOrigin: true },
      "/metrics": { target, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: false,
    // dist/ is committed and embedded in the server binary: keep it free of anything that
    // changes between builds of the same sources (no source maps, no timestamps, no manifest).
    manifest: false,
    chunkSizeWarningLimit: 900,
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
    // The form tests type field by field through user-event in jsdom: seconds each, more on a
    // busy two-core runner.
    testTimeout: 20_000,
    // Starts the dev mock for src/lib/dev-mock.test.ts.
    globalSetup: ["e2e/dev-mock.global-setup.mjs"],
  },
});
