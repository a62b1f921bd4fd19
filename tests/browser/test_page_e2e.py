"""The chat page end to end in real headless Chromium (Debian's, driven by Playwright):
open the page served with COOP/COEP, watch the bundled Gemma 3 270M load with progress,
send a message, see the reply stream in token by token, stop a reply mid-way, and get a
readable error for a bad model URL.

Needs: apt `chromium`, PyPI `playwright` (it cannot download browsers here, so it is
pointed at /usr/bin/chromium), and the web build (scripts/build_web.py, run here).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wasm_support import tools_missing  # noqa: E402

CHROMIUM = os.environ.get("PYLLM_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if tools_missing():
        return tools_missing()
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


pytestmark = [pytest.mark.skipif(_missing() is not None, reason=str(_missing())), pytest.mark.slow]


@pytest.fixture(scope="module")
def built_site() -> None:
    from scripts.build_web import build_site
    build_site(with_model=True)


@pytest.fixture(scope="module")
def site_url(built_site):
    from scripts.serve import serve_in_thread

    httpd, url = serve_in_thread(0)
    yield url
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="pyllm-chromium-")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--no-first-run", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync"])
        yield b
        b.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_page_loads_default_model_and_streams_a_reply(site_url: str, browser, tmp_path: Path) -> None:
    page = browser.new_page()
    logs: list[str] = []
    page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    page.goto(site_url)
    assert page.evaluate("crossOriginIsolated") is True
    # Pyodide boots in the worker, then the bundled model loads with visible progress
    page.wait_for_function("window.pyllm.ready === true || !!window.pyllm.lastError", timeout=60_000)
    assert page.evaluate("window.pyllm.lastError") is None, logs
    page.wait_for_selector("#progress:not([hidden])", timeout=10_000)
    page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=120_000)
    assert page.evaluate("window.pyllm.lastError") is None, (page.inner_text("#status"), logs)
    info = page.inner_text("#model-info")
    assert "gemma3" in info
    # where the time went: the boot's phases (Python restored from the build's snapshot) and the
    # load's (web/worker.js, app/worker/session.py), kept by the page and shown under the chat
    timings = page.evaluate("window.pyllm.timings")
    boot = dict(timings["boot"])
    assert list(boot) == ["page", "script", "build.json", "python", "wheels", "app"], timings
    assert timings["pythonFrom"] == "snapshot", (timings, logs)
    assert all(ms >= 0 for ms in boot.values())
    assert sum(boot.values()) <= page.evaluate("performance.now()")  # from the page's start to ready
    page.wait_for_function("!!window.pyllm.timings.load", timeout=10_000)
    load = dict(page.evaluate("window.pyllm.timings.load"))
    assert {"open", "engine", "stream", "stream_waiting", "finish", "store"} <= set(load), load
    assert {"header_ms", "runner_ms", "tokenizer_ms"} <= set(page.evaluate("window.pyllm.timings.model"))
    shown = page.text_content("#timings")
    assert shown.startswith("Boot ") and "(Python from its snapshot)" in shown and "\nLoad " in shown, shown
    assert "python " in shown and "header " in shown, shown
    # cross-origin isolated with 2+ cores: the pthreads module runs it
    cores = page.evaluate("navigator.hardwareConcurrency")
    assert (f"{cores} threads" if cores > 1 else "1 thread") in info, info

    # a reply streams: several token events reach the page before the reply is done
    page.evaluate("""() => { window.__tokens = 0; window.__early = null;
        const el = document.getElementById('chat');
        new MutationObserver(() => { window.__tokens++; if (window.pyllm.current && window.__early === null &&
            window.pyllm.current.text.length > 0) window.__early = window.pyllm.current.text; })
          .observe(el, {subtree: true, childList: true, characterData: true}); }""")
    page.click("#settings summary")  # open the settings panel
    page.fill("#opt-max-tokens", "24")
    page.fill("#prompt", "The capital of France is")
    page.click("#send-btn")
    page.wait_for_function("window.pyllm.current === null && window.pyllm.lastStats", timeout=120_000)
    reply = page.locator(".msg.assistant").last.inner_text()
    stats = page.evaluate("window.pyllm.lastStats")
    assert reply.strip(), logs
    assert stats["n_gen"] >= 2
    assert page.evaluate("window.__tokens") > 3  # the DOM changed token by token
    early = page.evaluate("window.__early")
    assert early and len(early) < len(reply)  # text was visible before the reply ended
    page.screenshot(path=str(tmp_path / "chat.png"))
    print(f"\npage: ready {page.evaluate('window.pyllm.readyMs'):.0f} ms (boot {page.evaluate('window.pyllm.bootMs')} ms),"
          f" model loaded in {page.evaluate('window.pyllm.loadedMs'):.0f} ms; reply {stats}")

    # regenerate replaces the last reply
    n_msgs = page.locator(".msg").count()
    page.click("#regen-btn")
    page.wait_for_function("window.pyllm.current === null && !document.getElementById('regen-btn').disabled",
                           timeout=120_000)
    assert page.locator(".msg").count() == n_msgs
    assert page.locator(".msg.assistant").last.inner_text().strip()

    # stop mid-reply
    page.fill("#opt-max-tokens", "400")
    page.fill("#prompt", "Write a long story about a lighthouse keeper.")
    page.click("#send-btn")
    page.wait_for_function("window.pyllm.current && window.pyllm.current.text.length > 10", timeout=60_000)
    page.click("#stop-btn")
    page.wait_for_function("window.pyllm.current === null", timeout=30_000)
    assert "Stopped" in page.inner_text("#status")
    assert page.evaluate("window.pyllm.lastStats.n_gen") < 400

    # one thread: the side module inside Pyodide
    page.fill("#opt-threads", "1")
    page.dispatch_event("#opt-threads", "change")
    page.evaluate("window.pyllm.loaded = false")
    page.click("#load-btn")
    page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=120_000)
    assert "1 thread" in page.inner_text("#model-info")
    page.fill("#opt-max-tokens", "8")
    page.fill("#prompt", "Hello")
    page.click("#send-btn")
    page.wait_for_function("window.pyllm.current === null", timeout=60_000)
    assert page.evaluate("window.pyllm.lastStats.n_gen") >= 1
    print(f"side module reply stats: {page.evaluate('window.pyllm.lastStats')}")
    page.close()


def test_bad_model_url_shows_a_clear_error(site_url: str, browser) -> None:
    page = browser.new_page()
    page.goto(site_url)
    page.wait_for_function("window.pyllm.ready === true", timeout=60_000)
    # ask for a model that is not there and a file that is not a GGUF
    page.evaluate("window.pyllm.models.push({id: 'nope', name: 'missing', url: 'models/nope.gguf', size: 0},"
                  " {id: 'html', name: 'not gguf', url: 'index.html', size: 0})")
    page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=120_000)
    for model_id, expect in (("nope", "404"), ("html", "GGUF")):
        page.evaluate("window.pyllm.lastError = null")
        page.evaluate(f"""() => {{ const s = document.getElementById('model-select');
            const o = document.createElement('option'); o.value = '{model_id}'; s.appendChild(o); s.value = '{model_id}';
            document.getElementById('load-btn').disabled = false; document.getElementById('load-btn').click(); }}""")
        page.wait_for_function("!!window.pyllm.lastError", timeout=60_000)
        err = page.evaluate("window.pyllm.lastError")
        assert expect in err, err
        assert "Error" in page.inner_text("#status")
    # neither the 404 nor the non-GGUF file became a cached model
    page.evaluate("window.pyllm.cached = null")
    page.evaluate("document.querySelector('#new-btn') && 0")
    cached = page.evaluate("""() => new Promise((resolve) => {
        const t = setInterval(() => { if (window.pyllm.cached) { clearInterval(t); resolve(window.pyllm.cached); } }, 50);
        window.pyllmWorker.postMessage({type: 'cache-list'}); })""")
    assert not [c for c in cached if c["url"].endswith(("nope.gguf", "index.html"))], cached
    page.close()


def test_offline_reload_chats_from_the_cache(built_site, browser) -> None:
    """Load once (the model goes into the Cache API, the app shell into the service
    worker's cache), stop the server, reload: the page opens, loads the cached model (with
    the header parsed at the first load) and chats. A bad download left nothing in the
    cache (checked through the worker)."""
    from scripts.serve import serve_in_thread

    httpd, url = serve_in_thread(0)  # its own server (and origin), stopped mid-test
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=180_000)
        assert page.evaluate("window.pyllm.lastError") is None
        assert page.evaluate("window.pyllm.loadedFromCache") is False
        assert page.evaluate("window.pyllm.headerCached") is False
        # the load is over (the model and its parsed header stored) when its timings come
        page.wait_for_function("!!window.pyllm.timings.load", timeout=60_000)
        page.wait_for_function("navigator.serviceWorker.controller !== null || "
                               "navigator.serviceWorker.ready.then(() => true)", timeout=60_000)
        page.wait_for_function("Array.isArray(window.pyllm.cached) && window.pyllm.cached.length === 1",
                               timeout=60_000)
        # the service worker has the shell once it is active
        page.evaluate("navigator.serviceWorker.ready")
    finally:
        httpd.shutdown()
        httpd.server_close()
    page.reload()
    page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=180_000)
    assert page.evaluate("window.pyllm.lastError") is None, page.inner_text("#status")
    assert page.evaluate("window.pyllm.loadedFromCache") is True
    assert page.evaluate("window.pyllm.headerCached") is True  # the stored header skipped the parse
    page.click("#settings summary")
    page.fill("#opt-max-tokens", "8")
    page.fill("#prompt", "Once upon a time")
    page.click("#send-btn")
    page.wait_for_function("window.pyllm.current === null && window.pyllm.lastStats", timeout=120_000)
    assert page.locator(".msg.assistant").last.inner_text().strip()
    context.close()


def test_local_file_and_truncated_file(site_url: str, browser, tmp_path: Path) -> None:
    """The file picker loads a local GGUF in place; a truncated GGUF gives a clear error."""
    from tools.testmodels import tiny

    model = tiny("llama", "Q4_0")
    cut = tmp_path / "truncated.gguf"
    data = model.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    page = browser.new_page()
    page.goto(site_url)
    page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=180_000)
    page.evaluate("window.pyllm.loaded = false")
    page.set_input_files("#file-input", str(model))
    page.wait_for_function("window.pyllm.loaded === true || !!window.pyllm.lastError", timeout=60_000)
    assert page.evaluate("window.pyllm.lastError") is None
    assert "llama" in page.inner_text("#model-info")
    page.set_input_files("#file-input", str(cut))
    page.wait_for_function("!!window.pyllm.lastError", timeout=60_000)
    err = page.evaluate("window.pyllm.lastError")
    assert "truncated" in err, err
    page.close()
