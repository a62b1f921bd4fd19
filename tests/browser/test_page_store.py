"""The page's model store, saved conversations, stop-during-prompt and safe rendering, in
real headless Chromium (Debian's, driven by Playwright), against the local server:

- a download cut short by a reload or a dropped connection resumes with an HTTP Range
  request; until it is complete it is a partial download, never a model; a 404, a non-GGUF file, a truncated GGUF and a
  wrong sha256 each give a clear message and leave nothing stored;
- a saved conversation survives a reload and continues exactly (same greedy reply, only the
  new turn evaluated); a damaged one is refused with a clear message, the chat unchanged;
- Stop during a long prompt ends the reply within a fraction of one 512-token chunk, in
  both engines (pthreads and the single-threaded side module);
- a reply full of HTML is shown as text.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_page_e2e import _missing, browser, built_site, site_url  # noqa: E402,F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent.parent
WEB = ROOT / "web"
pytestmark = [pytest.mark.skipif(_missing() is not None, reason=str(_missing())), pytest.mark.slow]

LOADED = "window.pyllm.loaded === true || !!window.pyllm.lastError"
RESUME_MODEL = "models/test-resume.gguf"


def _throttled_server():
    """The project's server (scripts/serve.py), sending test-* models slowly (so a reload can
    land mid-download) and remembering the Range requests it answered."""
    from scripts.serve import Handler, serve_in_thread

    ranges: list[tuple[str, str]] = []

    class Slow(Handler):
        def copyfile(self, source, outputfile):
            if "/models/test-" not in self.path:
                return super().copyfile(source, outputfile)
            if self.headers.get("Range"):
                ranges.append((self.path, self.headers["Range"]))
            left = getattr(self, "_range", None)
            try:
                self._send_slowly(source, outputfile, left)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page reloaded mid-download: exactly what the test does

        def _send_slowly(self, source, outputfile, left):
            if "/models/test-cut" in self.path and left is None:  # the connection drops half-way
                left = os.fstat(source.fileno()).st_size // 2
            while True:
                block = source.read(64 << 10 if left is None else min(left, 64 << 10))
                if not block:
                    return
                outputfile.write(block)
                if left is not None:
                    left -= len(block)
                    if left <= 0:
                        return
                time.sleep(0.05)  # ~1.3 MB/s

    httpd, url = serve_in_thread(0, WEB, handler=Slow)
    return httpd, url, ranges


@pytest.fixture(scope="module")
def test_models(site_url):  # noqa: F811  (built site first)
    from tools.testmodels import tiny

    made = []
    big = tiny("llama", "F32")  # 6.8 MB: several 1 MB parts
    small = tiny("llama", "Q4_0")
    for name, data in (("test-resume.gguf", big.read_bytes()), ("test-cut.gguf", big.read_bytes()),
                       ("test-sha.gguf", small.read_bytes()),
                       ("test-truncated.gguf", small.read_bytes()[: small.stat().st_size * 2 // 3])):
        path = WEB / "models" / name
        path.write_bytes(data)
        made.append(path)
    yield {"resume_size": big.stat().st_size, "sha_size": small.stat().st_size}
    for path in made:
        path.unlink(missing_ok=True)


def _cache_list(page) -> dict:
    page.evaluate("window.pyllm.cached = null")
    return page.evaluate("""() => new Promise((resolve) => {
        const t = setInterval(() => { if (window.pyllm.cached) { clearInterval(t);
          resolve({models: window.pyllm.cached, partial: window.pyllm.partial, storage: window.pyllm.storage}); } }, 50);
        window.pyllmWorker.postMessage({type: 'cache-list'}); })""")


def _load_url(page, url: str, **extra) -> None:
    page.evaluate("(o) => { window.pyllm.loadOptions = o.opts; window.pyllm.lastError = null;"
                  " window.pyllm.loaded = false; const m = {id: 'u' + window.pyllm.models.length + ':' + o.url, name: o.url, url: o.url, ...o.extra};"
                  " window.pyllm.models.push(m); const s = document.getElementById('model-select');"
                  " const opt = document.createElement('option'); opt.value = m.id; s.appendChild(opt); s.value = m.id;"
                  " document.getElementById('load-btn').disabled = false; document.getElementById('load-btn').click(); }",
                  {"url": url, "extra": extra, "opts": {"part_bytes": 1 << 20}})


def test_store_resumes_after_reload_and_keeps_nothing_bad(test_models, browser) -> None:  # noqa: F811
    httpd, url, ranges = _throttled_server()
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_function(LOADED, timeout=180_000)
        assert page.evaluate("window.pyllm.lastError") is None
        # start the slow download, reload in the middle of it
        _load_url(page, RESUME_MODEL)
        page.wait_for_function("document.getElementById('progress-bar').value > 45", timeout=60_000)
        page.reload()
        page.wait_for_function(LOADED, timeout=180_000)
        st = _cache_list(page)
        assert not [m for m in st["models"] if m["url"].endswith(RESUME_MODEL)], st  # not a model
        part = [p for p in st["partial"] if p["url"].endswith(RESUME_MODEL)]
        assert part and 0 < part[0]["have"] < test_models["resume_size"], st
        have = part[0]["have"]
        # load again: it resumes where the stored parts end
        _load_url(page, RESUME_MODEL)
        page.wait_for_function(LOADED, timeout=120_000)
        assert page.evaluate("window.pyllm.lastError") is None, page.inner_text("#status")
        assert "llama" in page.inner_text("#model-info")
        assert page.evaluate("window.pyllm.resumedFrom") == have
        assert (f"/{RESUME_MODEL}", f"bytes={have}-") in ranges, ranges
        st = _cache_list(page)
        stored = [m for m in st["models"] if m["url"].endswith(RESUME_MODEL)]
        assert stored and stored[0]["size"] == test_models["resume_size"]
        assert not st["partial"], st
        assert st["storage"]["usage"] and st["storage"]["usage"] >= test_models["resume_size"]
        assert "test-resume.gguf" in page.evaluate("document.getElementById('store-list').textContent")
        # a connection that drops half-way: a clear message, the good bytes kept, and the next
        # load resumes after them
        _load_url(page, "models/test-cut.gguf")
        page.wait_for_function("!!window.pyllm.lastError", timeout=60_000)
        err = page.evaluate("window.pyllm.lastError")
        assert "interrupted" in err and "resume" in err, err
        st = _cache_list(page)
        cut = [p for p in st["partial"] if p["url"].endswith("test-cut.gguf")]
        assert cut and cut[0]["have"] > 0 and not [m for m in st["models"] if m["url"].endswith("test-cut.gguf")]
        _load_url(page, "models/test-cut.gguf")
        page.wait_for_function(LOADED, timeout=120_000)
        assert page.evaluate("window.pyllm.lastError") is None, page.inner_text("#status")
        assert page.evaluate("window.pyllm.resumedFrom") == cut[0]["have"]
        assert "resumed at" in page.evaluate("document.getElementById('progress-text').textContent")
        # a stored model loads from the store, offline
        _load_url(page, RESUME_MODEL)
        page.wait_for_function(LOADED, timeout=60_000)
        assert page.evaluate("window.pyllm.loadedFromCache") is True

        # bad downloads: a clear message each, nothing stored, not even a partial download
        bad = [("models/nope.gguf", {}, "404"), ("index.html", {}, "GGUF"),
               ("models/test-truncated.gguf", {}, "truncated"),
               ("models/test-sha.gguf", {"sha256": "0" * 64, "size": test_models["sha_size"]}, "sha256 mismatch"),
               ("models/test-sha.gguf", {"size": test_models["sha_size"] + 1}, "catalogue expects")]
        for bad_url, extra, expect in bad:
            _load_url(page, bad_url, **extra)
            page.wait_for_function("!!window.pyllm.lastError", timeout=60_000)
            err = page.evaluate("window.pyllm.lastError")
            assert expect in err, (bad_url, err)
            assert "Error" in page.inner_text("#status")
        st = _cache_list(page)
        names = ("nope.gguf", "index.html", "test-truncated.gguf", "test-sha.gguf")
        assert not [m for m in st["models"] + st["partial"] if m["url"].endswith(names)], st
        # delete from the list: gone from the store
        page.evaluate(f"window.pyllmWorker.postMessage({{type: 'cache-delete', url: '{RESUME_MODEL}'}})")
        page.wait_for_function("!window.pyllm.cached.some((m) => m.url.endsWith('test-resume.gguf'))",
                               timeout=30_000)
    finally:
        context.close()
        httpd.shutdown()
        httpd.server_close()


def _send(page, text: str) -> dict:
    page.fill("#prompt", text)
    page.click("#send-btn")
    page.wait_for_function("window.pyllm.current === null && !window.pyllm.busy", timeout=180_000)
    assert page.evaluate("window.pyllm.lastError") is None, page.inner_text("#status")
    return {"text": page.evaluate("window.pyllm.messages[window.pyllm.messages.length - 1].content"),
            "stats": page.evaluate("window.pyllm.lastStats")}


def test_saved_chat_survives_a_reload_and_continues_exactly(site_url, browser) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(site_url)
        page.wait_for_function(LOADED, timeout=180_000)
        page.click("#settings summary")
        page.fill("#opt-max-tokens", "8")
        _send(page, "Hello! Who are you?")
        page.click("#save-chat-btn")
        page.wait_for_function("window.pyllm.savedChat && window.pyllm.saving === false", timeout=60_000)
        assert "saved" in page.inner_text("#status")
        saved_messages = page.evaluate("window.pyllm.messages")
        second = _send(page, "Tell me more.")

        page.reload()
        page.wait_for_function(LOADED, timeout=180_000)
        page.wait_for_function("!document.getElementById('restore-chat-btn').disabled", timeout=60_000)
        page.click("#restore-chat-btn")
        page.wait_for_function("document.getElementById('status').textContent.includes('restored')", timeout=60_000)
        assert page.evaluate("window.pyllm.messages") == saved_messages
        assert page.locator(".msg").count() == len(saved_messages)
        page.click("#settings summary")
        page.fill("#opt-max-tokens", "8")
        again = _send(page, "Tell me more.")
        assert again["text"] == second["text"]
        # the history came from the restored state: only the new turn was read
        assert again["stats"]["n_eval"] == second["stats"]["n_eval"] < again["stats"]["n_prompt"]

        # a damaged saved chat: a clear error, the conversation on screen and in the model unchanged
        page.evaluate("""async () => { const c = await caches.open('pyllm-chats-v1');
            const [req] = await c.keys(); const b = new Uint8Array(await (await c.match(req)).arrayBuffer());
            b[b.length >> 1] ^= 0xff; await c.put(req, new Response(b)); }""")
        n_msgs = page.locator(".msg").count()
        messages = page.evaluate("window.pyllm.messages")
        page.evaluate("window.pyllm.lastError = null")
        page.click("#restore-chat-btn")
        page.wait_for_function("!!window.pyllm.lastError", timeout=60_000)
        assert "corrupted" in page.evaluate("window.pyllm.lastError")
        assert "Error" in page.inner_text("#status")
        assert page.locator(".msg").count() == n_msgs and page.evaluate("window.pyllm.messages") == messages
        page.evaluate("window.pyllm.lastError = null")
        _send(page, "And then?")  # the session still works
    finally:
        context.close()


def _stop_during_prompt(page, prompt: str) -> tuple[dict, float, float]:
    """(the whole prompt's stats, ms per 512-token chunk, ms from Stop to the end)."""
    page.fill("#opt-max-tokens", "1")
    full = _send(page, prompt)["stats"]
    chunk_ms = full["prefill_ms"] * 512 / max(full["n_eval"], 1)
    page.click("#new-btn")  # forget the state: the next prompt is read from the start
    page.fill("#opt-max-tokens", "50")
    page.fill("#prompt", prompt)
    page.click("#send-btn")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Reading the prompt')",
                           timeout=60_000)
    page.wait_for_timeout(min(1000, int(full["prefill_ms"] / 4)))
    t0 = page.evaluate("performance.now()")
    page.click("#stop-btn")
    page.wait_for_function("window.pyllm.current === null", timeout=120_000)
    latency = page.evaluate("performance.now()") - t0
    stats = page.evaluate("window.pyllm.lastStats")
    assert "Stopped" in page.inner_text("#status")
    assert stats["n_gen"] == 0 and stats["n_eval"] < full["n_eval"]
    return full, chunk_ms, latency


def test_stop_during_a_long_prompt_is_quick(site_url, browser) -> None:  # noqa: F811
    """Stop while the model reads a long prompt: the engine stops between graph nodes, in
    both engines (pthreads: the page sets the flag in the engine's shared memory; the
    single-threaded side module: the engine asks a JS function that reads the flag)."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(site_url)
        page.wait_for_function(LOADED, timeout=180_000)
        page.click("#settings summary")
        page.check("#opt-raw")
        prompt = " ".join(f"Line {i} of a long document about lighthouses." for i in range(60))
        for threads in ([page.evaluate("navigator.hardwareConcurrency")] if page.evaluate(
                "navigator.hardwareConcurrency") > 1 else []) + [1]:
            if threads == 1:
                page.fill("#opt-threads", "1")
                page.dispatch_event("#opt-threads", "change")
                page.evaluate("window.pyllm.loaded = false")
                page.click("#load-btn")
                page.wait_for_function(LOADED, timeout=120_000)
            info = page.inner_text("#model-info")
            assert (f"{threads} threads" if threads > 1 else "1 thread") in info, info
            full, chunk_ms, latency = _stop_during_prompt(page, prompt)
            print(f"\n{info.split(' · ')[4]}: prompt of {full['n_eval']} tokens read in {full['prefill_ms']:.0f} ms "
                  f"({chunk_ms:.0f} ms per 512-token chunk); stop answered in {latency:.0f} ms")
            assert latency < max(chunk_ms / 3, 300), (threads, latency, chunk_ms)
    finally:
        context.close()


HOSTILE = ("<img src=x onerror=\"window.__pwned=1\"> **bold** <script>window.__pwned=2</script> "
           "[click](javascript:window.__pwned=3) `<b>code</b>`\n```html\n<iframe src=\"javascript:1\"></iframe>\n```")


def test_hostile_reply_is_shown_as_text(site_url, browser) -> None:  # noqa: F811
    """A reply full of HTML (delivered through the worker-to-page path a restored chat takes)
    is rendered with text nodes: nothing runs, no element but the markdown subset appears."""
    page = browser.new_page()
    try:
        page.goto(site_url)
        page.wait_for_function("window.pyllm.ready === true", timeout=120_000)
        page.evaluate("(t) => window.pyllmWorker.onmessage({data: {type: 'restored', n_tokens: 0,"
                      " messages: [{role: 'user', content: t}, {role: 'assistant', content: t}]}})", HOSTILE)
        page.wait_for_timeout(300)
        chat = page.locator("#chat")
        assert page.evaluate("window.__pwned") is None
        tags = page.evaluate("[...document.querySelectorAll('#chat *')].map((e) => e.tagName.toLowerCase())")
        assert set(tags) <= {"div", "strong", "code", "pre"}, tags
        text = chat.inner_text()
        assert '<img src=x onerror="window.__pwned=1">' in text and "<script>" in text
        assert page.locator("#chat pre code").first.inner_text().strip() == '<iframe src="javascript:1"></iframe>'
        assert page.locator("#chat strong").first.inner_text() == "bold"
    finally:
        page.close()
