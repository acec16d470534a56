import { statSync } from 'node:fs';
import { defineConfig } from 'vite';

// draftsmith's live preview runs `vite` inside the app's sandbox and proxies it under the
// preview's capability URL; it names the base path, the HMR path, the port and the HMR
// client's port in these variables (unset: Vite's own defaults, as on a laptop).
const preview = process.env;

// Vite's file watcher drops a file's second change within 50 ms of the first, and an agent
// writes that fast: the preview would keep the first edit until the next one. In the live
// preview each change is checked again after that window, and announced once more if the
// file has moved on since.
function lateChanges() {
  const state = (file) => {
    try {
      const s = statSync(file);
      return `${s.ino}:${s.mtimeMs}:${s.size}`;
    } catch {
      return '';
    }
  };
  return {
    name: 'draftsmith-late-changes',
    apply: 'serve',
    configureServer({ watcher }) {
      const pending = new Map();
      watcher.on('change', (file) => {
        clearTimeout(pending.get(file));
        const seen = state(file);
        pending.set(
          file,
          setTimeout(() => {
            pending.delete(file);
            if (state(file) !== seen) watcher.emit('change', file);
          }, 100),
        );
      });
    },
  };
}

// JSX is compiled by esbuild with the automatic React runtime,
// so no React plugin is needed.
export default defineConfig(({ command }) => ({
  // Built: relative asset URLs, so the app works under any path (the builder's preview).
  base: command === 'serve' ? (preview.DRAFTSMITH_PREVIEW_BASE ?? '/') : './',
  plugins: preview.DRAFTSMITH_PREVIEW_PORT ? [lateChanges()] : [],
  esbuild: {
    jsx: 'automatic',
  },
  // The runtime esbuild's JSX imports is not in the source, so Vite's start-up scan misses
  // it and finds it on the first page load: it optimizes again and reloads the page, whose
  // modules by then import two versions of React (a blank page if the reload is lost).
  // Named here, it is optimized with the rest before the first request.
  optimizeDeps: {
    include: ['react/jsx-dev-runtime'],
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
