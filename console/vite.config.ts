import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

/**
 * The console is built into dist/console and served by Herald at /console. No inline script or style may be
 * emitted (the page's Content-Security-Policy forbids them), so nothing is inlined into index.html and no asset
 * becomes a data: URL. `npm run dev:console` proxies /api to a running Herald (HERALD_URL, default
 * http://localhost:3000).
 */
export default defineConfig({
  root,
  base: "/console/",
  plugins: [preact({ reactAliasesEnabled: false })],
  build: {
    outDir: fileURLToPath(new URL("../dist/console", import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
  },
  server: {
    proxy: { "/api": process.env.HERALD_URL ?? "http://localhost:3000" },
  },
});
