// The model store: GGUF bytes kept in the Cache API, in parts, so that a download cut
// short (a reload, a lost connection) resumes where it stopped with an HTTP Range request,
// and a finished model loads offline.
//
//   "pyllm-parts-v2"   the bytes: <url>?pyllm-part=<i>, PART_BYTES each (the last shorter),
//                      and, while a download is unfinished, <url>?pyllm-part=progress
//                      ({size, validator, parts: [bytes of each part written]}), and, once
//                      a stored model was loaded, <url>?pyllm-part=header (its parsed GGUF
//                      header, app/gguf/header_cache.py: the next load skips the parse)
//   "pyllm-models-v2"  one manifest per finished model, keyed by its URL ({url, size,
//                      parts, sha256, saved_at}). Only a manifest makes a model: it is
//                      written after the engine accepted every byte and the size (and the
//                      sha256, when the catalogue knows it) matched; until then the parts
//                      are a partial download, listed as such and never loaded as a model.
//
// The bytes are written while the engine reads them (one pass); the only copy is the part
// being filled (PART_BYTES), never the whole model.
export const MODELS = "pyllm-models-v2";
export const PARTS = "pyllm-parts-v2";
const OLD_CACHES = ["pyllm-models-v1"]; // whole-file entries of earlier versions
export const PART_BYTES = 32 << 20;

const partKey = (key, i) => `${key}${key.includes("?") ? "&" : "?"}pyllm-part=${i}`;
const json = (obj) => new Response(JSON.stringify(obj), { headers: { "Content-Type": "application/json" } });

async function readJson(cache, key) {
  const hit = await cache.match(key);
  return hit ? hit.json() : null;
}

async function dropParts(key) {
  const parts = await caches.open(PARTS);
  const prefix = partKey(key, "");
  for (const req of await parts.keys()) if (req.url.startsWith(prefix)) await parts.delete(req);
}

// Bytes of the stored parts in order, as their bodies stream in (chunks of ~1 MB): reading a
// part's body as a stream is 2-3x faster than its arrayBuffer() (which gathers 32 MB first).
// The reads run in a worker of their own (web/part_reader.js), READ_WINDOW bytes at most
// ahead of the engine, so they overlap the copies into the engine.
const READ_WINDOW = 64 << 20;

async function* storedParts(key, sizes) {
  const damaged = (i) => new StoreError(`${key}: part ${i} of the stored bytes is missing or damaged (browser ` +
                                        `storage was cleared?); it was deleted: load the model again`);
  const reader = new Worker(new URL("./part_reader.js", import.meta.url));
  const queue = [];
  let wake = null;
  reader.onmessage = (e) => {
    queue.push(e.data);
    if (wake) wake();
  };
  reader.onerror = (e) => {
    queue.push({ error: -1, message: e.message });
    if (wake) wake();
  };
  reader.postMessage({ parts: PARTS, keys: sizes.map((_, i) => partKey(key, i)), sizes, window: READ_WINDOW });
  let consumed = 0;
  try {
    for (;;) {
      while (!queue.length) await new Promise((resolve) => { wake = resolve; });
      wake = null;
      const m = queue.shift();
      if (m.done) return;
      if (m.error != null) {
        if (m.error < 0) throw new StoreError(`${key}: reading the stored bytes failed (${m.message})`);
        throw damaged(m.error);
      }
      yield m.chunk;
      consumed += m.chunk.length;
      reader.postMessage({ consumed });
    }
  } finally {
    reader.terminate();
  }
}

async function* bodyChunks(body) {
  const reader = body.getReader();
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw new NetworkError(e.message || String(e));
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    reader.releaseLock();
  }
}

export class StoreError extends Error {}
export class NetworkError extends Error {}

// Fills parts of PART_BYTES and writes each one (then the progress record) to the cache.
class PartWriter {
  constructor(key, progress, partBytes) {
    this.key = key;
    this.progress = progress;
    this.buf = new Uint8Array(partBytes);
    this.fill = 0;
  }

  async push(chunk) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, this.buf.length - this.fill);
      this.buf.set(chunk.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === this.buf.length) await this.flush();
    }
  }

  async flush() {
    if (!this.fill) return;
    const parts = await caches.open(PARTS);
    await parts.put(partKey(this.key, this.progress.parts.length), new Response(this.buf.slice(0, this.fill)));
    this.progress.parts.push(this.fill);
    this.fill = 0;
    await parts.put(partKey(this.key, "progress"), json(this.progress));
  }
}

function parseContentRange(value) {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec((value || "").trim());
  return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : null;
}

// Open the bytes of a model URL: from the store when it is there, else downloaded (resumed
// from a partial download when the server answers the Range request). Returns
//   {chunks (async iterable of Uint8Array), total, fromCache, resumedFrom, header,
//    commit(sha256), discard(), keep(), saveHeader(bytes)}
// commit: after the engine accepted the model; discard: after a bad model (format,
// integrity); keep: after a network failure (the parts stay for a resume). header: the
// bytes saveHeader kept at an earlier load of the stored model (or null); saveHeader only
// keeps them for a stored (committed) model.
export async function openModelSource(url, { size = 0, partBytes = PART_BYTES } = {}) {
  const key = new URL(url, self.location.href).href;
  if (!self.caches) return openUncached(key, size);
  const models = await caches.open(MODELS);
  const manifest = await readJson(models, key);
  const parts = await caches.open(PARTS);
  const saveHeader = async (bytes) => { await parts.put(partKey(key, "header"), new Response(bytes)); };
  if (manifest) {
    const hit = await parts.match(partKey(key, "header"));
    const header = hit ? new Uint8Array(await hit.arrayBuffer()) : null;
    return { chunks: storedParts(key, manifest.parts), total: manifest.size, fromCache: true, resumedFrom: 0,
             header, saveHeader, commit: async () => {}, keep: async () => {},
             discard: async () => { await models.delete(key); await dropParts(key); } };
  }
  let progress = await readJson(parts, partKey(key, "progress"));
  let have = progress ? progress.parts.reduce((a, b) => a + b, 0) : 0;
  if (progress && (progress.part_bytes !== partBytes || (size && progress.size !== size))) {
    await dropParts(key); // another part size or another file: start over
    progress = null;
    have = 0;
  }
  let resp = await download(key, have ? { Range: `bytes=${have}-` } : {});
  let resumedFrom = 0;
  if (have && resp.status === 206) {
    const range = parseContentRange(resp.headers.get("Content-Range"));
    const rest = Number(resp.headers.get("Content-Length")) || null;
    const validator = resp.headers.get("ETag") || resp.headers.get("Last-Modified");
    const same = (range ? range.start === have && range.total === progress.size : rest === progress.size - have) &&
      (!validator || !progress.validator || validator === progress.validator);
    if (same) {
      resumedFrom = have;
    } else { // the file changed on the server: start over
      try { await resp.body.cancel(); } catch (_) { /* closed */ }
      await dropParts(key);
      progress = null;
      resp = await download(key, {});
    }
  } else if (have) { // 200: the server ignored the range; the full body replaces the parts
    await dropParts(key);
    progress = null;
  }
  const total = resumedFrom ? progress.size : Number(resp.headers.get("Content-Length")) || 0;
  if (size && total && total !== size) {
    try { await resp.body.cancel(); } catch (_) { /* closed */ }
    throw new StoreError(`${url}: the server sends ${total} bytes, the catalogue expects ${size}: not the ` +
                         `file the catalogue describes`);
  }
  if (!progress) {
    progress = { url: key, size: total || size || null, part_bytes: partBytes, parts: [],
                 validator: resp.headers.get("ETag") || resp.headers.get("Last-Modified") || null };
    await parts.put(partKey(key, "progress"), json(progress));
  }
  const writer = new PartWriter(key, progress, partBytes);
  async function* chunks() {
    if (resumedFrom) yield* storedParts(key, progress.parts.slice());
    for await (const chunk of bodyChunks(resp.body)) {
      await writer.push(chunk);
      yield chunk;
    }
  }
  let committed = false;
  return {
    chunks: chunks(), total, fromCache: false, resumedFrom, header: null,
    async saveHeader(bytes) { if (committed) await saveHeader(bytes); },
    async commit(sha256) {
      await writer.flush();
      const got = progress.parts.reduce((a, b) => a + b, 0);
      await models.put(key, json({ url: key, size: got, parts: progress.parts, part_bytes: partBytes,
                                   sha256: sha256 || null, saved_at: new Date().toISOString() }));
      await parts.delete(partKey(key, "progress"));
      committed = true;
    },
    async keep() { await writer.flush(); }, // what arrived is good bytes: the next load resumes after them
    async discard() { await dropParts(key); },
  };
}

function openUncached(key, size) {
  return download(key, {}).then((resp) => ({
    chunks: bodyChunks(resp.body), total: Number(resp.headers.get("Content-Length")) || size || 0,
    fromCache: false, resumedFrom: 0, header: null, saveHeader: async () => {}, commit: async () => {},
    keep: async () => {}, discard: async () => {},
  }));
}

const downloads = new Set(); // AbortControllers of the downloads under way

export function abortDownloads() {
  for (const c of downloads) c.abort();
  downloads.clear();
}

async function download(key, headers) {
  let resp;
  const abort = new AbortController();
  downloads.add(abort);
  try {
    resp = await fetch(key, { headers, cache: "no-store", signal: abort.signal });
  } catch (e) {
    throw new NetworkError(`${key}: cannot download (${e.message})`);
  }
  if (!resp.ok) throw new StoreError(`${key}: HTTP ${resp.status} ${resp.statusText || ""}`.trim());
  return resp;
}

// What the store holds: finished models, partial downloads, and the browser's storage figures.
export async function listStore() {
  const models = [];
  const partial = [];
  if (self.caches) {
    for (const name of OLD_CACHES) await caches.delete(name);
    const mcache = await caches.open(MODELS);
    for (const req of await mcache.keys()) {
      const m = await readJson(mcache, req);
      models.push({ url: req.url, size: m.size, sha256: m.sha256, saved_at: m.saved_at });
    }
    const pcache = await caches.open(PARTS);
    for (const req of await pcache.keys()) {
      if (!req.url.endsWith("pyllm-part=progress")) continue;
      const p = await readJson(pcache, req);
      partial.push({ url: p.url, size: p.size, have: p.parts.reduce((a, b) => a + b, 0) });
    }
  }
  const st = navigator.storage || {};
  const est = st.estimate ? await st.estimate() : {};
  const persisted = st.persisted ? await st.persisted() : null;
  return { models, partial, usage: est.usage ?? null, quota: est.quota ?? null, persisted };
}

export async function deleteStored(url) {
  const key = new URL(url, self.location.href).href;
  await (await caches.open(MODELS)).delete(key);
  await dropParts(key);
}
