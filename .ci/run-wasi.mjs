// Cargo runner for wasm32-wasip1: `node --no-warnings .ci/run-wasi.mjs file.wasm args...`.
// Runs the module under Node's WASI preview1 with the host file system visible at `/`
// (tests read tests/data/golden.json by absolute path) and exits with the module's status.
// A failing Rust test panics, which aborts the module (panic=abort): the exit status is then
// nonzero and cargo reports the failure.
import { readFile } from 'node:fs/promises';
import { argv, env, exit } from 'node:process';
import { WASI } from 'node:wasi';

const [file, ...args] = argv.slice(2);
if (!file) {
  console.error('usage: node run-wasi.mjs <module.wasm> [args...]');
  exit(2);
}
const wasi = new WASI({
  version: 'preview1',
  args: [file, ...args],
  env,
  preopens: { '/': '/' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance) ?? 0);
