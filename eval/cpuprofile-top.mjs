// Self time per function in a V8 `.cpuprofile` (from `node --cpu-prof`),
// optionally only between two seconds of the run: a wasm profile keeps
// the module's function names when the build is not stripped.
//
//   CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -p veil-eval \
//     --target wasm32-wasip1 --bin veil-eval
//   node --cpu-prof --cpu-prof-dir prof --cpu-prof-interval 100 \
//     eval/wasm-run.mjs target/wasm32-wasip1/release/veil-eval.wasm throughput --secs 3
//   node eval/cpuprofile-top.mjs prof/<file>.cpuprofile [from_s to_s] [top_n]
import { readFileSync } from "node:fs";

const [file, from, to, top] = process.argv.slice(2);
if (!file) {
  console.error("usage: node eval/cpuprofile-top.mjs <file.cpuprofile> [from_s to_s] [top_n]");
  process.exit(2);
}
// Rust's legacy symbol mangling (`_ZN` length-prefixed parts, a hash
// last) back to a path, enough to read a profile.
function demangle(sym) {
  if (!sym.startsWith("_ZN")) return sym;
  const parts = [];
  let i = 3;
  while (i < sym.length && sym[i] !== "E") {
    const len = parseInt(sym.slice(i), 10);
    if (!(len > 0)) return sym;
    i += String(len).length;
    parts.push(sym.slice(i, i + len));
    i += len;
  }
  if (/^h[0-9a-f]{16}$/.test(parts.at(-1) ?? "")) parts.pop();
  const escapes = { $LT$: "<", $GT$: ">", $u20$: " ", $u7b$: "{", $u7d$: "}", $RF$: "&", $C$: ",", $u27$: "'", $BP$: "*" };
  return parts
    .map((part) => (part.startsWith("_$") ? part.slice(1) : part))
    .join("::")
    .replace(/\$[A-Za-z0-9]+\$/g, (e) => escapes[e] ?? e)
    .replaceAll("..", "::");
}

const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const lo = from ? parseFloat(from) * 1e6 : -Infinity;
const hi = to ? parseFloat(to) * 1e6 : Infinity;
const self = new Map();
let t = 0;
let total = 0;
profile.samples.forEach((id, i) => {
  t += profile.timeDeltas[i];
  if (t < lo || t > hi) return;
  const frame = nodes.get(id).callFrame;
  const name = demangle(frame.functionName) || `(${frame.url})`;
  self.set(name, (self.get(name) ?? 0) + 1);
  total += 1;
});
console.log(`span ${(t / 1e6).toFixed(2)} s; ${total} samples in the window`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(top) || 25)) {
  console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 150)}`);
}
