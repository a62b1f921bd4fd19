"""Chat templates: every template of the pinned sdist renders the standard conversations;
hand-checked outputs for Qwen 3.5, Llama 3.x, Gemma, Mistral and Phi; fallbacks; sandbox."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from chat_support import CONVERSATIONS, FIXED_DATE, FIXED_NOW, FIXTURES, template_files

from app.chat import FALLBACKS, ChatTemplate, ChatTemplateError, chat_template_from_metadata

EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def _render(t: ChatTemplate, conv: str) -> str:
    messages, gen, tools = CONVERSATIONS[conv]
    return t.render(messages, gen, tools=tools, date_string=FIXED_DATE, datetime=FIXED_DATE,
                    now=FIXED_NOW)


def test_sdist_has_templates():
    assert len(template_files()) >= 60


@pytest.mark.parametrize("path", template_files(), ids=lambda p: p.stem)
def test_every_template_renders_every_conversation(path):
    t = ChatTemplate(path.read_text(encoding="utf-8"), "gguf", "<s>", "</s>")
    for conv, (messages, gen, tools) in CONVERSATIONS.items():
        if tools and not t.supports_tools:
            continue
        out = _render(t, conv)
        last_user = [m for m in messages if m["role"] == "user"][-1]["content"]
        assert last_user in out, f"{conv}: the last user turn is missing from the prompt"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hand_checked_outputs(name):
    if name.startswith("fallback:"):
        t = ChatTemplate(FALLBACKS[name.split(":", 1)[1]], name, "<bos>", "<eos>")
    else:
        path = next(p for p in template_files() if p.stem == name)
        t = ChatTemplate(path.read_text(encoding="utf-8"), "gguf", "<bos>", "<eos>")
    for conv, want in EXPECTED[name].items():
        assert _render(t, conv) == want, f"{name} / {conv}"


def test_expected_covers_required_families():
    names = " ".join(EXPECTED)
    for family in ("Qwen3.5", "Llama-3", "gemma", "Mistral", "Phi"):
        assert family in names


def test_gemma3_model_gets_the_gemma_fallback():
    from tokenizer_support import gemma3_path, metadata, tokenizer
    md = metadata(str(gemma3_path()))
    assert "tokenizer.chat_template" not in md
    tok = tokenizer(str(gemma3_path()))
    t = chat_template_from_metadata(md, tok)
    assert t.source == "fallback:gemma" and t.bos_token == "<bos>" and t.strip_bos
    # The tokenizer adds BOS itself (add_bos_token), so the prompt text leaves it out.
    prompt = t.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert prompt == "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    ids = tok.encode(prompt, add_special=True, parse_special=True)
    assert ids[:2] == [tok.bos_id, tok.token_id("<start_of_turn>")] and ids.count(tok.bos_id) == 1
    assert ids[-3] == tok.token_id("<start_of_turn>")
    assert chat_template_from_metadata(md).bos_token == "<bos>"  # from the metadata alone


def test_template_bos_kept_when_tokenizer_adds_none():
    from tokenizer_support import tokenizer, vocab_dir
    path = vocab_dir() / "ggml-vocab-qwen2.gguf"
    tok = tokenizer(str(path))
    t = chat_template_from_metadata({"tokenizer.chat_template": "{{ bos_token }}{{ messages[0]['content'] }}"}, tok)
    assert not tok.add_bos and t.render([{"role": "user", "content": "x"}]) == "<|endoftext|>x"


@pytest.mark.parametrize("tokens,model,arch,want", [
    (["<|im_start|>", "<|im_end|>"], "gpt2", "qwen2", "chatml"),
    (["<|start_header_id|>", "<|eot_id|>"], "gpt2", "llama", "llama3"),
    (["<s>", "</s>"], "llama", "llama", "llama2"),
    (["<start_of_turn>"], "llama", "gemma3", "gemma"),
    (["a", "b"], "gpt2", "gpt2", "chatml"),
])
def test_fallback_choice_is_visible(tokens, model, arch, want):
    md = {"general.architecture": arch, "tokenizer.ggml.model": model, "tokenizer.ggml.tokens": tokens}
    assert chat_template_from_metadata(md).source == f"fallback:{want}"


def test_template_from_metadata_is_used():
    md = {"tokenizer.chat_template": "{{ bos_token }}{{ messages[0]['content'] }}", "tokenizer.ggml.tokens": ["<s>"],
          "tokenizer.ggml.bos_token_id": 0}
    t = chat_template_from_metadata(md)
    assert t.source == "gguf" and t.render([{"role": "user", "content": "x"}]) == "<s>x"


def test_helpers():
    t = ChatTemplate("{{ raise_exception('no ' + messages[0]['role']) }}", "gguf")
    with pytest.raises(ChatTemplateError, match="no user"):
        t.render([{"role": "user", "content": "x"}])
    t = ChatTemplate("{{ strftime_now('%Y-%m-%d') }}|{{ {'k': 'é'} | tojson }}|{% for i in range(5) %}"
                     "{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", "gguf")
    assert t.render([], now=datetime(2031, 2, 3)) == '2031-02-03|{"k": "é"}|012'
    days = {datetime.now().strftime("%Y-%m-%d")}
    out = t.render([])  # unpinned: today's date (either side of a midnight during the call)
    days.add(datetime.now().strftime("%Y-%m-%d"))
    assert out.split("|")[0] in days
    # trim_blocks / lstrip_blocks as HF sets them
    t = ChatTemplate("  {% if true %}\nA\n  {% endif %}\nB", "gguf")
    assert t.render([]) == "A\nB"


def test_sandbox_protects_caller_data_and_internals():
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{{ messages.append({'role': 'evil'}) }}", "gguf").render(messages)
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{{ messages[0].update({'role': 'evil'}) }}", "gguf").render(messages)
    assert messages == [{"role": "user", "content": "x"}]
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}", "gguf").render(messages)
    # a template's own list may grow (Kimi K2 builds one)
    own = ChatTemplate("{% set xs = [] %}{% set _ = xs.append(1) %}{{ xs }}", "gguf")
    assert own.render(messages) == "[1]"
