import { defineConfig } from 'vite';

// JSX is compiled by esbuild with the automatic React runtime,
// so no React plugin is needed.
export default defineConfig({
  esbuild: {
    jsx: 'automatic',
  },
});
