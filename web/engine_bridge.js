// Bridge between Pyodide's memory and the pthreads engine module's memory (two separate
// wasm instances). app/worker/jslib.py calls the engine's exports directly and uses these
// helpers to move bytes across. Classic script: importScripts() in the worker, require()
// in Node tests; defines globalThis.pyllmBridge(pyodide, mod).
(function (root) {
  root.pyllmBridge = function (pyodide, mod) {
    const pyHeap = () => pyodide._module.HEAPU8;
    const modHeap = () => new Uint8Array(mod.wasmMemory.buffer); // fresh view: memory may grow
    return {
      mod,
      poolSize: mod.pyllmPoolSize || 0,
      copyIn(modPtr, pyPtr, n) { modHeap().set(pyHeap().subarray(pyPtr, pyPtr + n), modPtr); },
      copyOut(pyPtr, modPtr, n) { pyHeap().set(modHeap().subarray(modPtr, modPtr + n), pyPtr); },
      str(modPtr) { return mod.UTF8ToString(modPtr); },
      newString(s) {
        const n = mod.lengthBytesUTF8(s) + 1;
        const p = mod._malloc(n);
        mod.stringToUTF8(s, p, n);
        return p;
      },
    };
  };
})(typeof self !== "undefined" ? self : globalThis);
