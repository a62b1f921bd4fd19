// The WebGPU calls app/backends/webgpu/browser_device.py makes, as few JS calls as possible:
// a step's whole compute pass is encoded by one `run` call over a dispatch list that
// Python handed over once (`program`). Decisions (what to dispatch, buffer layout, limits)
// stay in Python. Classic script: imported by the module worker, defines self.pyllmWebGPU.
(function (root) {
  const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

  class Gpu {
    constructor(adapter, device, info) {
      this.adapter = adapter;
      this.device = device;
      this.queue = device.queue;
      this.info = info;
      this.limits = device.limits;
      this.features = [...device.features];
      this.error = null;
      this.staging = []; // MAP_READ buffers free for reuse
      this.modules = new Map(); // WGSL source -> shader module
      device.addEventListener("uncapturederror", (e) => { if (!this.error) this.error = e.error.message; });
      this.lost = false;
      device.lost.then((l) => {
        this.lost = true;
        if (!this.error) this.error = `device lost (${l.reason}): ${l.message}`;
      });
    }

    takeError() {
      const e = this.error;
      this.error = null;
      return e;
    }

    buffer(size, label) {
      return this.device.createBuffer({ size, usage: STORAGE(), label: label || undefined });
    }

    uniform(size, label) {
      return this.device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
                                        label: label || undefined });
    }

    // data: a typed array, or a Python buffer proxy (its getBuffer() views wasm memory)
    write(buf, offset, data, n) {
      if (ArrayBuffer.isView(data)) {
        this.queue.writeBuffer(buf, offset, data, 0, n);
        return;
      }
      const pb = data.getBuffer("u8");
      try {
        this.queue.writeBuffer(buf, offset, pb.data, 0, n);
      } finally {
        pb.release();
      }
    }

    pipeline(code, constants, label) {
      let mod = this.modules.get(code);
      if (!mod) {
        mod = this.device.createShaderModule({ code, label: label || undefined });
        this.modules.set(code, mod);
      }
      return this.device.createComputePipeline({
        layout: "auto", label: label || undefined,
        compute: { module: mod, entryPoint: "main", constants },
      });
    }

    // entries: [[buffer, offset, size (-1: whole)], ...] at bindings 0, 1, ...
    bind(pipeline, entries) {
      return this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: entries.map(([buffer, offset, size], binding) =>
          ({ binding, resource: size < 0 ? { buffer } : { buffer, offset, size } })),
      });
    }

    // list: [[pipeline, bindGroup, x, y, z], ...], kept as it is
    program(list) {
      return list;
    }

    // one step: copies before, the dispatches in `chunks` compute passes, copies after
    run(list, before, after, chunks) {
      const n = list.length;
      chunks = Math.max(1, Math.min(chunks, n));
      for (let c = 0; c < chunks; c++) {
        const enc = this.device.createCommandEncoder();
        if (c === 0) for (const [s, so, d, dof, size] of before) enc.copyBufferToBuffer(s, so, d, dof, size);
        const pass = enc.beginComputePass();
        let last = null;
        for (let i = Math.floor((n * c) / chunks); i < Math.floor((n * (c + 1)) / chunks); i++) {
          const [pipe, bg, x, y, z] = list[i];
          if (pipe !== last) {
            pass.setPipeline(pipe);
            last = pipe;
          }
          pass.setBindGroup(0, bg);
          pass.dispatchWorkgroups(x, y, z);
        }
        pass.end();
        if (c === chunks - 1) for (const [s, so, d, dof, size] of after) enc.copyBufferToBuffer(s, so, d, dof, size);
        this.queue.submit([enc.finish()]);
      }
    }

    // bytes [offset, offset+size) of a storage buffer (size a multiple of 4)
    async read(buf, offset, size) {
      let st = this.staging.findIndex((b) => b.size >= size);
      const staging = st >= 0 ? this.staging.splice(st, 1)[0]
        : this.device.createBuffer({ size: Math.max(size, 256), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(buf, offset, staging, 0, size);
      this.queue.submit([enc.finish()]);
      try {
        await staging.mapAsync(GPUMapMode.READ, 0, size);
      } catch (e) {
        staging.destroy();
        throw new Error(`WebGPU read-back failed: ${this.takeError() || e.message}`);
      }
      const out = new Uint8Array(staging.getMappedRange(0, size).slice(0));
      staging.unmap();
      this.staging.push(staging);
      return out;
    }

    sync() {
      return this.queue.onSubmittedWorkDone();
    }

    // milliseconds each dispatch of `list` takes alone (one submit each, waited for): a profile
    async profile(list) {
      const ms = [];
      for (const [pipe, bg, x, y, z] of list) {
        const t0 = performance.now();
        const enc = this.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(x, y, z);
        pass.end();
        this.queue.submit([enc.finish()]);
        await this.queue.onSubmittedWorkDone();
        ms.push(performance.now() - t0);
      }
      return ms;
    }
  }

  root.pyllmWebGPU = {
    // adapter + device with the adapter's own limits (`limitNames`) and shader-f16 if present;
    // resolves to a Gpu, or to {error} saying what is missing
    async open(powerPreference, limitNames) {
      if (!root.navigator || !navigator.gpu) return { error: "this browser has no WebGPU (navigator.gpu is missing)" };
      const adapter = await navigator.gpu.requestAdapter({ powerPreference });
      if (!adapter) return { error: "no WebGPU adapter (the browser has WebGPU but offers no GPU)" };
      const requiredLimits = {};
      for (const k of limitNames) if (k in adapter.limits) requiredLimits[k] = adapter.limits[k];
      const requiredFeatures = ["shader-f16"].filter((f) => adapter.features.has(f));
      let device;
      try {
        device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
      } catch (e) {
        return { error: `the WebGPU adapter refused a device: ${e.message}` };
      }
      const i = adapter.info || {};
      return new Gpu(adapter, device, { vendor: i.vendor || "", architecture: i.architecture || "",
                                        description: i.description || "", device: i.device || "",
                                        fallback: !!(i.isFallbackAdapter || adapter.isFallbackAdapter) });
    },
  };
})(typeof self !== "undefined" ? self : globalThis);
