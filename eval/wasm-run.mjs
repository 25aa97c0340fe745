// Runs the wasm32-wasip1 build of veil-eval under Node's WASI, i.e. in V8,
// the same wasm engine Envoy embeds. Usage:
//   cargo build --release -p veil-eval --target wasm32-wasip1 --bin veil-eval
//   node eval/wasm-run.mjs target/wasm32-wasip1/release/veil-eval.wasm throughput
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv } from "node:process";
import { setFlagsFromString } from "node:v8";

// The simd128 passes use relaxed-SIMD swizzles when the module is built
// with `+relaxed-simd` (.cargo/config.toml): Envoy 1.40's V8 runs them by
// default, Node 20's V8 (11.3) only behind this flag; V8 turned relaxed
// SIMD on by default in 11.4, so newer Node needs no flag. Modules
// without relaxed-SIMD instructions run the same either way. Set before
// the module is compiled.
setFlagsFromString("--experimental-wasm-relaxed-simd");

const [path, ...args] = argv.slice(2);
const wasi = new WASI({ version: "preview1", args: ["veil-eval", ...args], env: {} });
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
