// Which build of the engine this browser runs (wasm_ext/build_wasm.py makes two of each
// module). "relaxed" does x86's fused multiply-adds with relaxed SIMD's f32x4.relaxed_madd,
// the CPU's own FMA (Chrome 114+, Firefox 120+); "baseline" computes the same FMAs in f64,
// 3-4x slower, for engines without relaxed SIMD. Both give native's results on a CPU with
// FMA. Used by the worker (what to load) and the service worker (what to keep offline).

// a module whose one function is v128.const x3; f32x4.relaxed_madd (0xfd 0x85 0x02)
const RELAXED_SIMD_PROBE = Uint8Array.from(atob(
  "AGFzbQEAAAABBQFgAAF7AwIBAAo9ATsA/QwAAAAAAAAAAAAAAAAAAAAA/QwAAAAAAAAAAAAAAAAAAAAA/QwAAAAAAAAAAAAAAAAAAAAA/YUCCw=="),
  (c) => c.charCodeAt(0));

// -> {name, wheel, threads: {dir, js} | null} from build.json (scripts/build_web.py)
self.pyllmEngineFlavor = (build) => {
  let relaxed = false;
  try { relaxed = WebAssembly.validate(RELAXED_SIMD_PROBE); } catch (e) { /* no WebAssembly SIMD at all */ }
  const base = build.engine && build.engine.baseline;
  if (relaxed || !base) {
    return { name: "relaxed", wheel: build.wheels.engine, threads: (build.engine && build.engine.threads) || null };
  }
  return { name: "baseline", wheel: base.wheel, threads: base.threads || null };
};
