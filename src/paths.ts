import { fileURLToPath } from 'node:url';
// Compiled to dist/src/paths.js: two folders up is the package root.
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));
