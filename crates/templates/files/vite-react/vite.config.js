import { defineConfig } from 'vite';

// draftsmith's live preview runs `vite` inside the app's sandbox and proxies it under the
// preview's capability URL; it names the base path, the HMR path, the port and the HMR
// client's port in these variables (unset: Vite's own defaults, as on a laptop).
const preview = process.env;

// JSX is compiled by esbuild with the automatic React runtime,
// so no React plugin is needed.
export default defineConfig(({ command }) => ({
  // Built: relative asset URLs, so the app works under any path (the builder's preview).
  base: command === 'serve' ? (preview.DRAFTSMITH_PREVIEW_BASE ?? '/') : './',
  esbuild: {
    jsx: 'automatic',
  },
  server: {
    host: preview.DRAFTSMITH_PREVIEW_PORT ? '127.0.0.1' : undefined,
    port: preview.DRAFTSMITH_PREVIEW_PORT ? Number(preview.DRAFTSMITH_PREVIEW_PORT) : undefined,
    strictPort: Boolean(preview.DRAFTSMITH_PREVIEW_PORT),
    hmr: {
      path: preview.DRAFTSMITH_PREVIEW_HMR_PATH,
      clientPort: preview.DRAFTSMITH_PREVIEW_CLIENT_PORT
        ? Number(preview.DRAFTSMITH_PREVIEW_CLIENT_PORT)
        : undefined,
    },
  },
}));
