"""The generation API inside real Pyodide on the wasm engine: load, chat (with state reuse
across turns), regenerate and a sampled completion, as the browser worker will use it."""
from __future__ import annotations

import json
import sys

from pyodide_support import ROOT, app_files, run_in_pyodide

from tools.testmodels import tiny

CODE = r"""
import os, json
os.environ["PYLLM_ENGINE_LIB"] = "/work/pyllm_engine.so"
import app
llm = app.load("/work/model.gguf", n_ctx=512, threads=1)
render = lambda ms, gen=True: "<s>" + "".join(f"{m['role']}:{m['content']}</s><s>" for m in ms) + ("assistant:" if gen else "")
chat = llm.chat(system="hi", render=render, temperature=0, max_tokens=8)
r1 = chat.send("hello"); r1.read()
r2 = chat.send("more"); pieces = [p.text for p in r2]
r3 = chat.regenerate(); r3.read()
c = llm.complete("once upon", max_tokens=6, seed=5, stop=["zzz"]); c.read()
new = len(llm.tokenize("</s><s>user:more</s><s>assistant:", add_special=False, parse_special=True))
json.dumps(dict(new=new, r1=r1.tokens, r1p=len(r1.prompt_tokens), r1s=r1.stop_reason, r2p=len(r2.prompt_tokens),
                r2=r2.tokens and "".join(pieces) == r2.text, cached=r2.stats.cached_tokens,
                prefill=r2.stats.prefill_tokens, r3=r3.stats.prefill_tokens, same=r3.text == r2.text,
                c=[c.stop_reason, len(c.tokens), c.seed], roles=[m["role"] for m in chat.messages]))
"""


def test_generation_api_in_pyodide():
    sys.path.insert(0, str(ROOT))
    from wasm_ext.build_wasm import side_module
    model = tiny("llama", "Q8_0")
    files = app_files("gguf", "models", "tokenizer", "chat", "sampling", "generate")
    for p in ("app/ops.py", "app/backends/__init__.py", "app/backends/ggml/library.py",
              "app/backends/ggml/runner.py", "app/backends/ggml/graph.py"):
        files[f"/work/{p}"] = str(ROOT / p)
    files["/work/pyllm_engine.so"] = str(side_module())
    files["/work/model.gguf"] = str(model)
    got = json.loads(run_in_pyodide(CODE, files, timeout=300))

    unevaluated = 1 if got["r1s"] == "length" else 0  # see test_session.py
    assert got["cached"] == got["r1p"] + len(got["r1"]) - unevaluated  # turn 2 reused turn 1's state
    assert got["prefill"] == got["r2p"] - got["cached"] == got["new"] + unevaluated  # only the new tokens
    assert got["r2"] and got["same"] and got["r3"] == 1
    assert got["c"] == ["length", 6, 5]
    assert got["roles"] == ["system", "user", "assistant", "user", "assistant"]
