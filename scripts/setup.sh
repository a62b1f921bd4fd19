#!/usr/bin/env bash
# Install everything the project needs on a fresh machine of this kind (Debian + Python 3.11).
# Idempotent: packages already present are not reinstalled. Builds land in ~/.cache/pyllm
# (override with PYLLM_CACHE), keyed by pinned versions and source hashes.
set -euo pipefail
cd "$(dirname "$0")/.."

# cmake/g++: native engine + llama.cpp reference; emscripten: the wasm engine builds;
# nodejs/npm: Pyodide under Node; chromium: page tests; mesa-vulkan-drivers: WebGPU on the CPU (lavapipe)
APT_PACKAGES=(cmake g++ make emscripten chromium mesa-vulkan-drivers)
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# Pinned sources (llama-cpp-python sdist, sha256-checked), the native engine and the
# llama.cpp reference build. Each prints its path; each is cached.
python3 wasm_ext/sources.py >/dev/null
python3 wasm_ext/build_native.py
python3 tests/reference/build.py
python3 tools/assets.py
python3 tools/pyodide_dist.py >/dev/null
python3 wasm_ext/build_wasm.py --threads >/dev/null   # side module + pthreads module
python3 tools/pyodide_test_dist.py >/dev/null          # the dist pytest-pyodide runs tests/in_pyodide on
