// Runs Python inside real Pyodide under Node, offline.
//   node tests/pyodide/run.mjs JOB.json
// JOB: {"indexURL": dir of pyodide.mjs, "wheels": [paths], "files": {pyodide_path: host_path},
//       "code": python source}. The code's last expression (a str) is printed on stdout.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { loadPyodide } = await import(pathToFileURL(job.indexURL + "/pyodide.mjs").href);
const pyodide = await loadPyodide({ indexURL: job.indexURL + "/" });
for (const wheel of job.wheels) {
  pyodide.unpackArchive(new Uint8Array(readFileSync(wheel)), "wheel");
}
for (const [dest, src] of Object.entries(job.files)) {
  pyodide.FS.mkdirTree(dirname(dest));
  pyodide.FS.writeFile(dest, new Uint8Array(readFileSync(src)));
}
const out = await pyodide.runPythonAsync(job.code);
process.stdout.write(String(out) + "\n");
