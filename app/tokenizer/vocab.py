"""The vocabulary as llama.cpp loads it: token texts, scores, attributes, special ids.

Besides reading the arrays, llama.cpp fixes up token attributes and end-of-generation ids
from the token texts (most converted models do not mark them). Those rules decide which
tokens are "special" (split out before BPE/SPM, hidden when detokenizing without
`special`) and when generation stops, so `Vocab.from_metadata` applies the same ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from operator import neg
from typing import Any

from .pretokenize import PreSpec, get_pre_tokenizer

# Token attributes (bit flags, llama_token_attr).
UNKNOWN, UNUSED, NORMAL, CONTROL, USER_DEFINED, BYTE = 1, 2, 4, 8, 16, 32
LSTRIP, RSTRIP = 128, 256
# tokenizer.ggml.token_type values -> attribute
_TYPE_TO_ATTR = {0: 0, 1: NORMAL, 2: UNKNOWN, 3: CONTROL, 4: USER_DEFINED, 5: UNUSED, 6: BYTE}

SUPPORTED_MODELS = ("llama", "gpt2", "gemma4", "bert", "t5")
KV = "tokenizer.ggml."

_EOT_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
              "<EOT>", "_<EOT>", "[EOT]", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_utterance>")
_FIM_TEXTS = {
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uff5cfim\u2581begin\uff5c>", "<PRE>",
                "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uff5cfim\u2581hole\uff5c>", "<SUF>",
                "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uff5cfim\u2581end\uff5c>", "<MID>",
                "\u2581<MID>", "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}
_EOG_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
              "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
              "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
              "<\uff5cend\u2581of\u2581sentence\uff5c>", "[e~[")
_ALWAYS_RENDERED = ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>")  # gpt-oss

# metadata key suffix -> Vocab attribute for special ids (later keys win, as in llama.cpp)
_ID_KEYS = (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("eot_token_id", "eot"), ("eom_token_id", "eom"),
            ("unknown_token_id", "unk"), ("seperator_token_id", "sep"), ("padding_token_id", "pad"),
            ("mask_token_id", "mask"), ("fim_pre_token_id", "fim_pre"), ("fim_suf_token_id", "fim_suf"),
            ("fim_mid_token_id", "fim_mid"), ("fim_pad_token_id", "fim_pad"), ("fim_rep_token_id", "fim_rep"),
            ("fim_sep_token_id", "fim_sep"), ("prefix_token_id", "fim_pre"), ("suffix_token_id", "fim_suf"),
            ("middle_token_id", "fim_mid"))


def _as_bytes(values: list[int]) -> bytes:
    """A uint8 or int8 metadata array as bytes."""
    try:
        return bytes(values)
    except ValueError:
        return bytes(v & 0xFF for v in values)


class TokenizerError(ValueError):
    """Metadata that cannot make a tokenizer: names the field and what is supported."""


def _model_and_tokens(md: dict[str, Any]) -> tuple[str, list[str]]:
    model = md.get(KV + "model")
    if model not in SUPPORTED_MODELS:
        raise TokenizerError(
            f"tokenizer.ggml.model = {model!r} is not supported; supported: "
            "'llama' (SentencePiece with byte fallback), 'gpt2' (byte-level BPE), 'gemma4' (SPM-style BPE), "
            "'bert' (WordPiece), 't5' (Unigram)")
    tokens = md.get(KV + "tokens")
    if not isinstance(tokens, list) or not tokens:
        raise TokenizerError("tokenizer.ggml.tokens is missing or empty: the GGUF carries no vocabulary")
    return model, tokens


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model
    pre: str  # pre-tokenizer name ("" for SPM)
    tokens: list[str]
    scores: list[float]
    attrs: list[int]
    token_to_id: dict[str, int]
    merges: list[str]
    pre_spec: PreSpec | None
    ids: dict[str, int | None] = field(default_factory=dict)  # bos, eos, eot, ... (None = absent)
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool = False
    escape_whitespaces: bool = True
    clean_spaces: bool = False
    charsmap: bytes | None = None  # Unigram's precompiled normaliser
    remove_extra_whitespaces: bool = False
    wpm_lowercase: bool = True  # WordPiece normaliser options
    wpm_strip_accents: bool = True
    eog_ids: set[int] = field(default_factory=set)
    special_ids: list[int] = field(default_factory=list)  # longest text first

    @property
    def is_spm(self) -> bool:
        return self.model == "llama"

    @property
    def is_wpm(self) -> bool:
        return self.model == "bert"

    @property
    def is_ugm(self) -> bool:
        return self.model == "t5"

    @classmethod
    def from_metadata(cls, md: dict[str, Any]) -> "Vocab":
        model, tokens = _model_and_tokens(md)
        n = len(tokens)
        # (262k entries for some models: map() where a comprehension is not needed)
        tokens = list(tokens) if all(tokens) else [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
        scores = md.get(KV + "scores")
        scores = list(map(float, scores[:n])) if scores is not None else [0.0] * n
        types = md.get(KV + "token_type")
        attrs = list(map(_TYPE_TO_ATTR.get, types[:n], repeat(0))) if types is not None else [NORMAL] * n
        if len(scores) < n or len(attrs) < n:
            raise TokenizerError(f"tokenizer.ggml.scores/token_type hold fewer than the {n} tokens")

        v = cls(model=model, pre="", tokens=tokens, scores=scores, attrs=attrs,
                token_to_id=dict(zip(tokens, range(n))), merges=[], pre_spec=None)
        v._configure(md)
        v._fix_attributes(md)
        return v

    @classmethod
    def special_tokens(cls, md: dict[str, Any]) -> "Vocab":
        """Just the special ids and add_bos/add_eos (no token tables built): cheap."""
        model, tokens = _model_and_tokens(md)
        v = cls(model=model, pre="", tokens=tokens, scores=[], attrs=[], token_to_id={}, merges=[], pre_spec=None)
        v._configure(md)
        return v

    def _configure(self, md: dict[str, Any]) -> None:
        ids = self.ids
        if self.model == "llama":
            ids.update(bos=1, eos=2, unk=0)
            self.add_space_prefix, self.add_bos, self.escape_whitespaces = True, True, True
        elif self.model == "t5":
            ids.update(eos=1, unk=2, pad=0)
            self.add_eos = True
            blob = md.get(KV + "precompiled_charsmap")
            self.charsmap = _as_bytes(blob) if blob else None
        elif self.model == "bert":
            ids.update(bos=101, unk=100, sep=102, pad=0, mask=103)
            self.add_bos, self.clean_spaces, self.escape_whitespaces = True, True, False
            self.wpm_lowercase = bool(md.get(KV + "normalizer.lowercase", True))
            self.wpm_strip_accents = bool(md.get(KV + "normalizer.strip_accents", self.wpm_lowercase))
        else:
            merges = md.get(KV + "merges")
            if not isinstance(merges, list):
                raise TokenizerError(f"tokenizer.ggml.merges is missing: a {self.model!r} (BPE) vocab needs it")
            self.merges = merges
            pre = "gemma4" if self.model == "gemma4" else md.get(KV + "pre")
            try:
                self.pre = get_pre_tokenizer(pre).name
            except ValueError as e:
                raise TokenizerError(str(e)) from None
            spec = self.pre_spec = get_pre_tokenizer(self.pre).spec
            if self.model == "gpt2":
                ids.update(bos=11, eos=11)
            if spec.no_bos:
                ids["bos"] = None
            self.add_bos, self.clean_spaces = spec.add_bos, spec.clean_spaces
            self.escape_whitespaces = spec.escape_whitespaces
        self.add_space_prefix = bool(md.get(KV + "add_space_prefix", self.add_space_prefix))
        self.remove_extra_whitespaces = bool(md.get(KV + "remove_extra_whitespaces", False))

        n = len(self.tokens)
        for name in ("bos", "eos", "eot", "eom", "unk", "sep", "pad", "mask",
                     "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep"):
            if ids.get(name) is not None and ids[name] >= n:
                ids[name] = None  # a default id outside the vocab is disabled
            ids.setdefault(name, None)
        for key, name in _ID_KEYS:
            value = md.get(KV + key)
            if value is not None and 0 <= int(value) < n:
                ids[name] = int(value)
        if KV + "add_bos_token" in md:
            self.add_bos = bool(md[KV + "add_bos_token"])
        if KV + "add_eos_token" in md:
            self.add_eos = bool(md[KV + "add_eos_token"])
        if self.pre == "gemma4":
            self.add_bos = True  # llama.cpp forces BOS for Gemma 4

    def _find_first(self, texts: tuple[str, ...]) -> int | None:
        for t in texts:
            i = self.token_to_id.get(t)
            if i is not None:
                return i
        return None

    def _mark_control(self, i: int) -> None:
        self.attrs[i] |= CONTROL

    def _fix_attributes(self, md: dict[str, Any]) -> None:
        ids, attrs, t2i = self.ids, self.attrs, self.token_to_id
        # Special ids the converter did not write, found by their text (and forced to control).
        if ids["eot"] is None and (i := self._find_first(_EOT_TEXTS)) is not None:
            ids["eot"] = i
            self._mark_control(i)
        if ids["eom"] is None and (i := t2i.get("<|eom_id|>")) is not None:
            ids["eom"] = i
            self._mark_control(i)
        for name, texts in _FIM_TEXTS.items():
            if ids[name] is None and (i := self._find_first(texts)) is not None:
                ids[name] = i
                self._mark_control(i)
        # Control tokens named "unused" are unused.
        tokens = self.tokens
        for i in [i for i, a in enumerate(attrs) if a & CONTROL and not a & UNUSED]:
            if "unused" in tokens[i]:
                attrs[i] |= UNUSED

        eog = {ids[k] for k in ("fim_pad", "fim_rep", "fim_sep") if ids[k] is not None}
        for text in _EOG_TEXTS:
            i = t2i.get(text)
            if i is not None:
                eog.add(i)
                self._mark_control(i)
        for text in _ALWAYS_RENDERED:
            if (i := t2i.get(text)) is not None:
                attrs[i] = USER_DEFINED
        eog.update(ids[k] for k in ("eos", "eot", "eom") if ids[k] is not None)
        texts = {self.tokens[i]: i for i in eog}
        # o200k_harmony / solar-open: "<|end|>" ends a message, not the generation.
        if "<|end|>" in texts and (("<|return|>" in texts and ("<|call|>" in texts or "<|calls|>" in texts))
                                   or (("<|call|>" in texts or "<|calls|>" in texts) and "<|flush|>" in texts)):
            eog.discard(texts["<|end|>"])
            attrs[texts["<|end|>"]] = USER_DEFINED
        # Gemma 4 / PLaMo: "</s>" is an ordinary token there.
        if "</s>" in texts and ("<|tool_response>" in texts or "<|plamo:eos|>" in texts):
            eog.discard(texts["</s>"])
            attrs[texts["</s>"]] = NORMAL
        self.eog_ids = eog

        special = [i for i, a in enumerate(attrs) if a & (CONTROL | USER_DEFINED | UNKNOWN)]
        # longest UTF-8 text first, ties by id (as a stable sort of the ascending ids), the
        # keys made by map() rather than a lambda per id: 6k specials in Gemma 3, ~25 ms in Pyodide
        n_bytes = map(len, map(str.encode, map(self.tokens.__getitem__, special)))
        self.special_ids = [i for _, i in sorted(zip(map(neg, n_bytes), special))]
        self._per_model_strip(md)

    def _per_model_strip(self, md: dict[str, Any]) -> None:
        """lstrip/rstrip flags llama.cpp sets by model name (they trim text around specials)."""
        name = str(md.get("general.name", "")).lower()
        pre = str(md.get(KV + "pre", ""))
        arch = str(md.get("general.architecture", ""))

        def set_attr(text: str, flag: int, on: bool) -> None:
            i = self.token_to_id.get(text)
            if i is not None:
                self.attrs[i] = self.attrs[i] | flag if on else self.attrs[i] & ~flag

        if any(s in pre for s in ("jina-v2-de", "jina-v2-es", "jina-v2-code")) or \
                any(s in arch for s in ("nomic-bert-moe", "jina-bert-v3")):
            set_attr("<mask>", LSTRIP, True)
        elif "phi-3" in name or "phi3" in name:
            for i in self.special_ids:
                self.attrs[i] |= RSTRIP
            set_attr("</s>", RSTRIP, True)
            for text in ("<unk>", "<s>", "<|endoftext|>"):
                set_attr(text, RSTRIP, False)
        elif "modern-bert" in name:
            set_attr("[MASK]", LSTRIP, True)
