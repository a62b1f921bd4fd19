"""Per-reply numbers: what was prefilled, how fast, and when the first token came."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class ReplyStats:
    prompt_tokens: int = 0      # the whole prompt (conversation so far), in tokens
    cached_tokens: int = 0      # of those, already in the model state: not computed again
    prefill_tokens: int = 0     # evaluated by this reply's prefill
    prefill_ms: float = 0.0
    generated_tokens: int = 0   # tokens of the reply (an end-of-generation token not counted)
    decode_ms: float = 0.0      # from the first sampled token to the last
    decode_steps: int = 0       # sampled tokens after the first (the steps decode_ms covers)
    ttft_ms: float = 0.0        # from the start of the reply to its first token
    total_ms: float = 0.0
    dropped_tokens: int = 0     # removed to make room when the context filled (drop_oldest)

    @property
    def prefill_tok_s(self) -> float:
        return self.prefill_tokens / self.prefill_ms * 1e3 if self.prefill_ms > 0 else 0.0

    @property
    def decode_tok_s(self) -> float:
        return self.decode_steps / self.decode_ms * 1e3 if self.decode_ms > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "prefill_tok_s": self.prefill_tok_s, "decode_tok_s": self.decode_tok_s}

    def summary(self) -> str:
        return (f"prompt {self.prompt_tokens} tokens ({self.cached_tokens} cached, {self.prefill_tokens} prefilled "
                f"in {self.prefill_ms:.0f} ms, {self.prefill_tok_s:.1f} tok/s) | generated {self.generated_tokens} "
                f"tokens, {self.decode_tok_s:.1f} tok/s | first token {self.ttft_ms:.0f} ms")
