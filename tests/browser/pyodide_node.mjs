// Runs Python inside real Pyodide under Node, the way the browser worker does it:
// wheels installed with loadPackage (so the engine side module is compiled and
// preloaded by Pyodide), host folders mounted read-only through NODEFS, and a JS
// helper that streams a host file into a ModelStream chunk by chunk (the same three
// steps the worker takes with a fetch body: staging(n), HEAPU8.set, feed_staged(n)).
//   node tests/browser/pyodide_node.mjs JOB.json
// JOB: {"indexURL", "wheels": [paths], "mounts": {pyodide_dir: host_dir}, "code"}
// The code's last expression (a str) is printed on stdout as the last line.
import { openSync, readSync, closeSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const t0 = performance.now();
const { loadPyodide } = await import(pathToFileURL(job.indexURL + "/pyodide.mjs").href);
const pyodide = await loadPyodide({ indexURL: job.indexURL + "/" });
const tBoot = performance.now();
await pyodide.loadPackage(job.wheels, { messageCallback: () => {} });
const tWheels = performance.now();
for (const [dest, src] of Object.entries(job.mounts || {})) {
  pyodide.FS.mkdirTree(dest);
  pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: src }, dest);
}

// stream a host file into a ModelStream (python object) in chunks of `chunk` bytes
globalThis.streamHostFile = (hostPath, ms, chunk) => {
  const fd = openSync(hostPath, "r");
  const buf = new Uint8Array(chunk);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, chunk, null);
      if (n === 0) break;
      const ptr = ms.staging(n);
      pyodide._module.HEAPU8.set(buf.subarray(0, n), ptr);
      ms.feed_staged(n);
    }
  } finally {
    closeSync(fd);
  }
};
// optional: the pthreads engine module next to Pyodide, bridged for app/worker/jslib.py
if (job.mt) {
  const require = createRequire(import.meta.url);
  require(job.mt.bridge);
  const createPyllmEngine = require(job.mt.js);
  // Node has a global fetch that cannot read files: hand over the wasm bytes
  const wasmBinary = readFileSync(job.mt.js.replace(/\.js$/, ".wasm"));
  const mod = await createPyllmEngine({ pyllmPoolSize: Math.max(1, job.mt.pool), // 0 would never resolve (Emscripten 3.1.6)
    INITIAL_MEMORY: job.mt.memory || (Number(process.env.PYLLM_MT_MEMORY_MB || 256) << 20), wasmBinary });
  globalThis.mtBridge = globalThis.pyllmBridge(pyodide, mod);
}
globalThis.timings = { boot_ms: tBoot - t0, wheels_ms: tWheels - tBoot };
const out = await pyodide.runPythonAsync(job.code);
// exit once stdout is flushed (pipes are asynchronous); pthread workers would keep Node alive
process.stdout.write("\n" + String(out) + "\n", () => process.exit(0));
