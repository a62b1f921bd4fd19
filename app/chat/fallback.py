"""Chat formats for models whose GGUF carries no `tokenizer.chat_template`.

The choice is made from metadata (architecture and the vocabulary's marker tokens) and
reported to the caller as `ChatTemplate.source == "fallback:<name>"`.
"""
from __future__ import annotations

from typing import Any

# Gemma turn format (Gemma 2/3): no system role, so the system text opens the first user turn.
GEMMA = (
    "{{ bos_token }}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Llama 2 [INST] format: the system prompt goes inside the first instruction in <<SYS>>.
LLAMA2 = (
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = '<<SYS>>\n' + messages[0]['content'] + '\n<</SYS>>\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + (system if loop.first else '') + message['content'] | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

FALLBACKS = {"gemma": GEMMA, "chatml": CHATML, "llama3": LLAMA3, "llama2": LLAMA2}


def choose_fallback(metadata: dict[str, Any]) -> str:
    """Name of the fallback format for a model without a template."""
    arch = str(metadata.get("general.architecture", "")).lower()
    tokens = metadata.get("tokenizer.ggml.tokens") or []
    markers = set()
    for t in ("<|start_header_id|>", "<|im_start|>", "[INST]", "<start_of_turn>"):
        if t in tokens:
            markers.add(t)
    if arch.startswith("gemma") or "<start_of_turn>" in markers:
        return "gemma"
    if "<|start_header_id|>" in markers:
        return "llama3"
    if "<|im_start|>" in markers:
        return "chatml"
    if arch == "llama" and metadata.get("tokenizer.ggml.model") == "llama":
        return "llama2"
    return "chatml"
