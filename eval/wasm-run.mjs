// Runs the wasm32-wasip1 build of veil-eval under Node's WASI, i.e. in V8,
// the same wasm engine Envoy embeds. Usage:
//   cargo build --release -p veil-eval --target wasm32-wasip1 --bin veil-eval
//   node eval/wasm-run.mjs target/wasm32-wasip1/release/veil-eval.wasm throughput
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv } from "node:process";

const [path, ...args] = argv.slice(2);
const wasi = new WASI({ version: "preview1", args: ["veil-eval", ...args], env: {} });
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
