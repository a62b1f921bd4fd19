// Reads a stored model's parts from the Cache API on a thread of its own (web/model_store.js
// starts it) and posts their bytes, transferred, in the order of the stream. A Cache API body
// only moves while the thread reading it is free: in the worker that feeds the engine, the
// reads waited for each chunk's copy into the engine (~0.3-0.4 s of a 250 MB load). Here
// they run while the engine takes the previous chunks.
//
// in:  {parts: cache name, keys: [part url], sizes: [bytes], window: bytes}   start
//      {consumed: bytes}   the reader may run `window` bytes ahead of what was consumed
// out: {chunk: Uint8Array}, {done: true}, {error: part index}
let consumed = 0;
let wake = null;

self.onmessage = async (event) => {
  const m = event.data;
  if (m.consumed != null) {
    consumed = m.consumed;
    if (wake) wake();
    return;
  }
  const cache = await caches.open(m.parts);
  let posted = 0;
  for (let i = 0; i < m.keys.length; i++) {
    let got = 0;
    try {
      const hit = await cache.match(m.keys[i]);
      if (!hit || !hit.body) throw new Error("missing");
      const reader = hit.body.getReader();
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        got += r.value.length;
        if (got > m.sizes[i]) throw new Error("too long");
        while (posted - consumed > m.window) await new Promise((resolve) => { wake = resolve; });
        wake = null;
        // a chunk that is not its buffer's whole (none seen so far) is copied before the transfer
        const whole = r.value.byteOffset === 0 && r.value.byteLength === r.value.buffer.byteLength;
        const chunk = whole ? r.value : r.value.slice();
        posted += chunk.length;
        self.postMessage({ chunk }, [chunk.buffer]);
      }
      if (got !== m.sizes[i]) throw new Error("too short");
    } catch (e) {
      self.postMessage({ error: i });
      return;
    }
  }
  self.postMessage({ done: true });
};
