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
globalThis.timings = { boot_ms: tBoot - t0, wheels_ms: tWheels - tBoot };
const out = await pyodide.runPythonAsync(job.code);
process.stdout.write("\n" + String(out) + "\n");
