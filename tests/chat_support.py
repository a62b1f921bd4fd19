"""Conversations the chat-template tests render, and the sdist's template files."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wasm_ext.sources import llama_cpp_dir  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "chat"
FIXED_DATE = "26 Jul 2024"  # templates that print today's date take date_string instead
FIXED_NOW = datetime(2024, 7, 26)  # ...or call strftime_now (Mistral 3.x): the clock is pinned

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER1 = {"role": "user", "content": "Hello! Who are you?"}
ASSISTANT1 = {"role": "assistant", "content": "I am an assistant. How can I help?"}
USER2 = {"role": "user", "content": "Tell me a joke about llamas."}

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]
TOOL_CALL = {"role": "assistant", "content": "", "tool_calls": [
    {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call00001", "name": "get_weather",
               "content": "{\"temperature\": 18, \"sky\": \"cloudy\"}"}

# name -> (messages, add_generation_prompt, tools)
CONVERSATIONS = {
    "single_user": ([USER1], False, None),
    "system_user": ([SYSTEM, USER1], False, None),
    "three_turns": ([USER1, ASSISTANT1, USER2], False, None),
    "generation_prompt": ([SYSTEM, USER1, ASSISTANT1, USER2], True, None),
    "tool_call": ([SYSTEM, {"role": "user", "content": "What's the weather in Paris?"}, TOOL_CALL, TOOL_RESULT],
                  True, TOOLS),
}


def template_files() -> list[Path]:
    return sorted((llama_cpp_dir() / "models" / "templates").glob("*.jinja"))
