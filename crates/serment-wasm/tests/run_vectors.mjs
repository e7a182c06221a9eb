// Runs the test vectors through serment-wasm compiled to wasm32 (wasm-bindgen --target nodejs)
// and prints the verdicts as JSON on stdout. Driven by tests/wasm_vectors.rs.
//
// usage: node run_vectors.mjs <wasm-bindgen output dir> <tests/vectors dir>
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const [pkgDir, vectorsDir] = process.argv.slice(2);
if (!pkgDir || !vectorsDir) {
  console.error('usage: node run_vectors.mjs <pkg dir> <vectors dir>');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const wasm = require(resolve(pkgDir, 'serment_wasm.js'));
const files = {};
for (const name of readdirSync(vectorsDir)) {
  if (name.endsWith('.json')) files[name] = readFileSync(join(vectorsDir, name), 'utf8');
}
const out = wasm.check_vectors(JSON.stringify(files));
const parsed = JSON.parse(out);
if (!Array.isArray(parsed)) {
  console.error(`serment-wasm: ${out}`);
  process.exit(1);
}
process.stdout.write(out + '\n');
