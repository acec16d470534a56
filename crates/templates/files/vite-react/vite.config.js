import { defineConfig } from 'vite';

// JSX is compiled by esbuild with the automatic React runtime,
// so no React plugin is needed.
export default defineConfig({
  // Relative asset URLs, so the built app works under any path (the builder's preview).
  base: './',
  esbuild: {
    jsx: 'automatic',
  },
});
