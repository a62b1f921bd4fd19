"""In-browser speed of the chat page (headless Debian Chromium) against llama.cpp, as ratios.

    python bench/bench_browser.py [--threads 1 2] [--prompt 128] [--gen 32] [--reps 2]

Builds and serves the site (scripts/serve.py), opens the page, and for each thread count
loads the bundled Gemma 3 270M (1 thread: the side module inside Pyodide; more: the
pthreads module), then runs --reps rounds of one prompt of ~--prompt tokens (plain
completion, new chat each round, so the whole prompt is evaluated) and --gen greedy
tokens, EOS ignored. The first round is a warm-up (graph building). llama.cpp (the
reference driver built from the same sdist) runs the same token counts at the same
threads right after, on the same machine. Also prints page-open-to-ready (worker with
Pyodide and the app installed) and load-to-first-token for the model (served from the
local server, so that is the speed of a cached model).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reference"))

CHROMIUM = os.environ.get("PYLLM_CHROMIUM", "/usr/bin/chromium")
TEXT = ("The lighthouse stood at the edge of the world, and every night its keeper climbed the stairs to light "
        "the lamp. Ships passed far out at sea, their crews never knowing the name of the man who kept them safe. ")


def browser_runs(threads_list: list[int], n_prompt: int, n_gen: int, reps: int) -> dict:
    from playwright.sync_api import sync_playwright

    from scripts.build_web import build_site
    from scripts.serve import serve_in_thread

    build_site(with_model=True)
    httpd, url = serve_in_thread(0)
    out: dict = {"runs": {}}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                  args=["--no-sandbox", "--no-first-run", "--disable-background-networking"])
            page = b.new_page()
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_function("window.pyllm.ready === true", timeout=120_000)
            out["ready_ms"] = (time.perf_counter() - t0) * 1e3
            out["boot_ms"] = page.evaluate("window.pyllm.bootMs")
            out["boot_phases"] = page.evaluate("window.pyllm.timings.boot")
            out["python_from"] = page.evaluate("window.pyllm.timings.pythonFrom")
            out["cores"] = page.evaluate("navigator.hardwareConcurrency")
            page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=300_000)
            page.click("#settings summary")
            page.evaluate("window.pyllm.extraOptions = {ignore_eos: true}")
            page.check("#opt-raw") if not page.is_checked("#opt-raw") else None
            words = TEXT.split()
            prompt = " ".join((words * (n_prompt // len(words) + 2))[: int(n_prompt * 0.8)])
            for threads in threads_list:
                page.fill("#opt-threads", str(threads))
                page.dispatch_event("#opt-threads", "change")
                page.evaluate("window.pyllm.loaded = false; window.pyllm.timings.load = null")
                t1 = time.perf_counter()
                page.click("#load-btn")
                page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=300_000)
                load_ms = (time.perf_counter() - t1) * 1e3
                page.wait_for_function("!!window.pyllm.timings.load", timeout=10_000)
                load_phases = page.evaluate("window.pyllm.timings.load")
                model_phases = page.evaluate("window.pyllm.timings.model")
                header_cached = page.evaluate("window.pyllm.headerCached")
                # first token of a short message right after the load
                page.fill("#opt-max-tokens", "1")
                page.fill("#prompt", "Hello")
                page.click("#send-btn")
                page.wait_for_function("window.pyllm.current === null", timeout=120_000)
                first_stats = page.evaluate("window.pyllm.lastStats")
                first_ms = load_ms + first_stats["first_token_ms"]
                rounds = []
                page.fill("#opt-max-tokens", str(n_gen))
                for _ in range(reps + 1):
                    page.click("#new-btn")
                    page.fill("#prompt", prompt)
                    page.click("#send-btn")
                    page.wait_for_function("window.pyllm.current === null", timeout=600_000)
                    rounds.append(page.evaluate("window.pyllm.lastStats"))
                info = page.inner_text("#model-info")
                out["runs"][threads] = {"load_ms": load_ms, "load_to_first_token_ms": first_ms, "rounds": rounds[1:],
                                        "info": info, "load_phases": load_phases, "model_phases": model_phases,
                                        "header_cached": header_cached,
                                        "first_stats": first_stats}
            b.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    from tools.assets import gemma3_270m_path

    res = browser_runs(args.threads, args.prompt, args.gen, args.reps)
    from build import reference_binary  # tests/reference/build.py
    from oracle import Oracle

    oracle = Oracle(reference_binary())
    model = gemma3_270m_path()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (browser sees {res['cores']}), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"page open -> worker ready: {res['ready_ms']:.0f} ms (Pyodide + wheels in the worker: {res['boot_ms']} ms)")
    phases = " · ".join(f"{n} {ms}" for n, ms in res["boot_phases"])
    print(f"  boot (ms, from the page's start): {phases}  [Python {'from its snapshot' if res['python_from'] == 'snapshot' else 'started'}]")
    for threads, run in res["runs"].items():
        phases = " · ".join(f"{n} {ms}" for n, ms in run["load_phases"])
        py = " · ".join(f"{k.removesuffix('_ms')} {v:.0f}" for k, v in (run["model_phases"] or {}).items())
        fs = run["first_stats"]
        header = "its stored parsed header" if run.get("header_cached") else "header parsed"
        print(f"  {threads} thread(s), cached load (ms): {phases}  [Python: {py}; {header}]")
        print(f"  {threads} thread(s), first token (ms): tokenize {fs.get('prompt_ms', 0):.0f} · graph build "
              f"{fs.get('graph_build_ms', 0):.0f} · compute {fs.get('compute_ms', 0):.0f} · to the first token "
              f"{fs['first_token_ms']:.0f}")
    print(f"{'threads':>7} {'engine':>9} {'prefill tok/s':>14} {'llama.cpp':>10} {'ratio':>6} "
          f"{'decode tok/s':>13} {'llama.cpp':>10} {'ratio':>6} {'load ms':>8} {'load->1st token ms':>19}")
    for threads, run in res["runs"].items():
        n_eval = run["rounds"][0]["n_eval"]
        pre = statistics.median(r["prefill_tok_s"] for r in run["rounds"])
        dec = statistics.median(r["decode_tok_s"] for r in run["rounds"])
        ref = oracle.bench(model, threads, n_eval, args.gen, args.reps + 1)[1:]
        ref_pre = statistics.median(r["n_prompt"] / (r["prefill_ms"] / 1e3) for r in ref)
        ref_dec = statistics.median((r["n_gen"] - 0) / (r["decode_ms"] / 1e3) for r in ref)
        engine = "pthreads" if "threads" in run["info"] and threads > 1 else "side"
        print(f"{threads:>7} {engine:>9} {pre:>14.1f} {ref_pre:>10.1f} {pre / ref_pre:>6.2f} {dec:>13.1f} "
              f"{ref_dec:>10.1f} {dec / ref_dec:>6.2f} {run['load_ms']:>8.0f} {run['load_to_first_token_ms']:>19.0f}")
    for threads, run in res["runs"].items():
        per = [(r["decode_ms"] / max(r["n_gen"] - 1, 1), r.get("decode_compute_ms", 0) / max(r["n_gen"] - 1, 1))
               for r in run["rounds"] if "decode_ms" in r]
        if per:
            wall, comp = statistics.median(w for w, _ in per), statistics.median(c for _, c in per)
            print(f"  {threads} thread(s), a decode step: {wall:.1f} ms, of which the engine computes {comp:.1f} ms "
                  f"(the rest: sampling, detokenizing, token events)")
    print(f"(prompt {n_eval} tokens, {args.gen} generated, median of {args.reps} rounds after a warm-up; targets: "
          f"decode >= 0.65x, prefill >= 0.40x, ready <= 2500 ms, first token <= 1500 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
