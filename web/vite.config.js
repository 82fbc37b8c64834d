// Two pages, one build: /console (analysts) and /screen (wall screen). Built into web/dist,
// which the API serves (api/web.py); nothing is fetched from a CDN at run time.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  root: __dirname,
  base: "/",
  build: {
    outDir: resolve(__dirname, "dist"),
    emptyOutDir: true,
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      input: {
        console: resolve(__dirname, "console/index.html"),
        screen: resolve(__dirname, "screen/index.html"),
      },
    },
  },
});
