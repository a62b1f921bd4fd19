// Pure-Python wheels unpacked in JS: the zip's central directory, each member inflated with
// DecompressionStream("deflate-raw"). Pyodide's loadPackage unpacks a wheel in Python, which
// right after the worker's start (Python restored from its snapshot, on V8's baseline code)
// took 0.5-0.7 s for the app and Jinja2; here the bytes are fetched and inflated while Python
// starts, and installing them is a few file writes. Wheels with native code (the engine's
// side module) still go through loadPackage, which loads their shared libraries.

// -> Promise of [[path inside the wheel, Uint8Array], ...]
export async function fetchWheelFiles(url) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  const buf = new Uint8Array(await resp.arrayBuffer());
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let eocd = buf.length - 22; // end of central directory record (no zip64: wheels are small)
  while (eocd >= 0 && dv.getUint32(eocd, true) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error(`${url}: not a zip file`);
  const count = dv.getUint16(eocd + 10, true);
  let p = dv.getUint32(eocd + 16, true);
  const names = new TextDecoder();
  const files = [];
  for (let i = 0; i < count; i++) {
    if (dv.getUint32(p, true) !== 0x02014b50) throw new Error(`${url}: damaged zip directory`);
    const method = dv.getUint16(p + 10, true);
    const size = dv.getUint32(p + 20, true);
    const nameLen = dv.getUint16(p + 28, true);
    const local = dv.getUint32(p + 42, true);
    const name = names.decode(buf.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + dv.getUint16(p + 30, true) + dv.getUint16(p + 32, true);
    if (name.endsWith("/")) continue;
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    const data = buf.subarray(start, start + size);
    if (method === 0) files.push(Promise.resolve([name, data]));
    else if (method === 8) files.push(inflate(data).then((d) => [name, d]));
    else throw new Error(`${url}: ${name}: unsupported zip compression ${method}`);
  }
  return Promise.all(files);
}

async function inflate(data) {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Write the files into site-packages (where loadPackage would put them).
export function installWheelFiles(py, files) {
  const site = py.runPython("import site; site.getsitepackages()[0]");
  for (const [name, data] of files) {
    const path = `${site}/${name}`;
    py.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    py.FS.writeFile(path, data);
  }
  py.runPython("import importlib; importlib.invalidate_caches()");
}
