"""Inside real Pyodide (Python 3.14, Node, offline): Jinja2 and MarkupSafe load from our
pure-Python wheels, chat templates render and the tokenizer gives the host's ids."""
from __future__ import annotations

import json

from chat_support import CONVERSATIONS, FIXED_DATE, template_files
from pyodide_support import app_files, run_in_pyodide
from tokenizer_support import corpus, tokenizer, vocab_dir

from app.chat import FALLBACKS, ChatTemplate

CODE = """
import json
import markupsafe, jinja2
from app.chat import ChatTemplate, FALLBACKS
from app.gguf import read_gguf
from app.tokenizer import Tokenizer

job = json.load(open("/work/job.json"))
tok = Tokenizer.from_metadata(read_gguf("/work/vocab.gguf").metadata)
templates = {"qwen35": ChatTemplate(open("/work/qwen35.jinja").read(), "gguf", "<s>", "</s>"),
             "gemma": ChatTemplate(FALLBACKS["gemma"], "fallback:gemma", "<bos>", "<eos>")}
prompts = {}
for name, t in templates.items():
    for conv, (messages, gen, tools) in job["conversations"].items():
        if tools and not t.supports_tools:
            continue
        prompts[f"{name}/{conv}"] = t.render(messages, gen, tools=tools, date_string=job["date"])
json.dumps({
    "markupsafe": markupsafe._escape_inner.__module__,
    "jinja2": jinja2.__version__,
    "prompts": prompts,
    "prompt_ids": {k: tok.encode(p, add_special=True, parse_special=True) for k, p in prompts.items()},
    "corpus_ids": [tok.encode(s, add_special=False, parse_special=True) for s in job["corpus"]],
})
"""


def test_chat_and_tokenizer_in_pyodide(tmp_path):
    qwen35 = next(p for p in template_files() if p.stem == "Qwen3.5-4B")
    vocab = vocab_dir() / "ggml-vocab-qwen35.gguf"
    texts = corpus()[::4]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"conversations": CONVERSATIONS, "date": FIXED_DATE, "corpus": texts}))
    files = {**app_files("gguf", "tokenizer", "chat"), "/work/job.json": str(job), "/work/vocab.gguf": str(vocab),
             "/work/qwen35.jinja": str(qwen35)}
    got = json.loads(run_in_pyodide(CODE, files))

    assert got["markupsafe"] == "markupsafe._native"  # pure Python, no C speedups
    assert got["jinja2"] == "3.1.6"
    tok = tokenizer(str(vocab))
    templates = {"qwen35": ChatTemplate(qwen35.read_text(), "gguf", "<s>", "</s>"),
                 "gemma": ChatTemplate(FALLBACKS["gemma"], "fallback:gemma", "<bos>", "<eos>")}
    want = {}
    for name, t in templates.items():
        for conv, (messages, gen, tools) in CONVERSATIONS.items():
            if tools and not t.supports_tools:
                continue
            want[f"{name}/{conv}"] = t.render(messages, gen, tools=tools, date_string=FIXED_DATE)
    assert got["prompts"] == want
    assert got["prompt_ids"] == {k: tok.encode(p, add_special=True, parse_special=True) for k, p in want.items()}
    assert got["corpus_ids"] == [tok.encode(s, add_special=False, parse_special=True) for s in texts]
