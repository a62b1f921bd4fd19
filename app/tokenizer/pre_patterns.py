"""The pre-tokenizer table: for each `tokenizer.ggml.pre` name llama.cpp knows and we
support, its regexes (in tokenizer.json notation, as llama.cpp adapts them) and the vocab
flags llama.cpp ties to it. Every entry is checked against llama.cpp in the tests."""
from __future__ import annotations

from dataclasses import dataclass

# Contractions, case-insensitive the way llama.cpp adapts `(?i:...)`.
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN35 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# Character classes from DeepSeek's tokenizer.json (escaped so no editor normalizes them).
_DEEPSEEK_LLM_LETTERS = (
    "A-Za-z\xb5\xc0-\xd6\xd8-\xf6\xf8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373"
    "\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481"
    "\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf"
    "\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d"
    "\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4"
    "\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107"
    "\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f"
    "\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d"
    "\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17"
    "\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb"
    "\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943")
_DEEPSEEK_LLM_PUNCT = "!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002"
_CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
_STARCODER = [r"\p{N}", _GPT2]
_CJK3 = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
_ASCII_PUNCT_WORD = r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+"
_DEEPSEEK3 = [r"\p{N}{1,3}", _CJK3, _ASCII_PUNCT_WORD + r"|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
              r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"]
_SPARK = [r"\p{N}{1,3}", _CJK3, _ASCII_PUNCT_WORD + r"|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
          r"| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+", r"\p{N}"]
_CASED = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+" + _CONTRACTIONS
          + r"?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*" + _CONTRACTIONS + "?")
_YOUTU = ["[\uac00-\ud7a3\u3131-\u318e]+|[\uff01\u2026\u201c\u201d\u2018\u2019\u2014\uff1a\uff1b\uff0c"
          "\u3001-\u303f\ufe30-\ufe4f]+|[\u3105-\u312f]+|" + _CJK3,
          _CASED + r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"]
# Upper-then-lower letter runs, written with lookaheads as llama.cpp adapts them.
_UPPER_LOWER = (r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+{c}"
                r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*{c}")
_TEKKEN = (_UPPER_LOWER.replace("{c}", "") + r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (_UPPER_LOWER.replace("{c}", _CONTRACTIONS + "?")
          + r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GRANITE_MULTI = _GPT4O.replace(r"(?=[\p{L}])", r"(?=[\p{L}\p{M}])")
_PORO = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"
_JAIS2 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          + "".join(rf"|\s{{{n}}}(?!\S)" for n in (512, 256, 128, 64, 32, 16, 8, 4)) + r"|\s{1,2}(?!\S)|\s{1}")
_BAILING = (r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
            r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+")
_SEED_CODER = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")
_UFAKZEKA = r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_EXAONE_MOE = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+")
_MINICPM5 = [r"\p{N}{1,3}", _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+"]
_CHAMELEON = ["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", r"\p{N}",
              r"[\p{P}!-/:-@\[-`{-~]", _GPT2]


@dataclass(frozen=True)
class PreSpec:
    """One `tokenizer.ggml.pre` family: its regexes and the vocab flags llama.cpp ties to it."""
    regexes: tuple[str, ...]
    byte_encode: bool = True  # GPT-2 byte-to-unicode encoding of each piece
    clean_spaces: bool = True  # detokenizer's clean_up_tokenization_spaces
    ignore_merges: bool = False  # a piece that is a whole token skips the merges
    add_bos: bool = False  # default when metadata has no add_bos_token
    escape_whitespaces: bool = False  # spaces become U+2581 before splitting (SPM-style BPE)
    no_bos: bool = False  # the vocab has no default BOS id (ChatGLM)


def _spec(regexes, **kw) -> PreSpec:
    return PreSpec(tuple(regexes), **kw)


_LLAMA3_SPEC = _spec([_LLAMA3], ignore_merges=True, add_bos=True)
_GPT2_SPEC = _spec([_GPT2])
_QWEN2_SPEC = _spec([_QWEN2], clean_spaces=False)
_STARCODER_SPEC = _spec(_STARCODER)
_DEFAULT_SPEC = _spec([r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", "[0-9][0-9][0-9]"])

PRE_TOKENIZERS: dict[str, PreSpec] = {
    "default": _DEFAULT_SPEC,
    **{n: _LLAMA3_SPEC for n in ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                 "midm-2.0", "lfm2", "jina-v5-nano")},
    "dbrx": _spec([_LLAMA3]),
    "smaug-bpe": _spec([_LLAMA3]),
    "deepseek-llm": _spec(["[\r\n]", "\\s?[" + _DEEPSEEK_LLM_LETTERS + "]+",
                           "\\s?[" + _DEEPSEEK_LLM_PUNCT + "]+", "\\s+$", _CJK, r"\p{N}+"],
                          clean_spaces=False),
    "deepseek-coder": _spec(["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", _CJK, r"\p{N}"], clean_spaces=False),
    "falcon": _spec([r"[\p{P}\$\+<=>\^~\|`]+", _GPT2,
                     "[0-9][0-9][0-9]"]),
    "mpt": _GPT2_SPEC,
    "olmo": _GPT2_SPEC,
    "starcoder": _STARCODER_SPEC,
    "refact": _STARCODER_SPEC,
    "codeshell": _STARCODER_SPEC,
    "exaone": _STARCODER_SPEC,
    "minerva-7b": _STARCODER_SPEC,
    "mellum2": _STARCODER_SPEC,
    "command-r": _spec(_STARCODER, clean_spaces=False),
    "smollm": _spec(_STARCODER, clean_spaces=False),
    **{n: _GPT2_SPEC for n in ("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                               "a.x-4.0", "mellum", "modern-bert", "exaone4", "jais")},
    **{n: _QWEN2_SPEC for n in ("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open")},
    "stablelm2": _spec([_QWEN2]),
    "megrez": _spec([_QWEN2]),
    "qwen35": _spec([_QWEN35], clean_spaces=False),
    "trillion": _spec([_GPT2], clean_spaces=False),
    "granite-docling": _spec([_GPT2], clean_spaces=False),
    "gemma4": _spec(["[^\n]+|[\n]+"], byte_encode=False, escape_whitespaces=True),
    "chatglm-bpe": _spec([_LLAMA3], no_bos=True),
    "glm4": _spec([_LLAMA3], no_bos=True, ignore_merges=True),
    "glm5": _spec([_LLAMA3], no_bos=True, ignore_merges=True),
    "jais-2": _spec([_JAIS2]),
    "tekken": _spec([_TEKKEN], clean_spaces=False, ignore_merges=True, add_bos=True),
    **{n: _spec([_GPT4O], clean_spaces=False) for n in ("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2")},
    "granite-embed-multi-97m": _spec([_GRANITE_MULTI], clean_spaces=False, ignore_merges=True),
    **{n: _spec(_DEEPSEEK3, clean_spaces=False) for n in ("deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4")},
    "spark2_5": _spec(_SPARK, clean_spaces=False),
    "youtu": _spec(_YOUTU, clean_spaces=False, ignore_merges=True),
    "bloom": _spec([_PORO]),
    "gpt3-finnish": _spec([_PORO]),
    "poro-chat": _spec([_PORO], clean_spaces=False),
    "viking": _spec([_PORO, r"\p{N}"], clean_spaces=False),
    "chameleon": _spec(_CHAMELEON, clean_spaces=False, add_bos=True),
    **{n: _spec([_BAILING], clean_spaces=False) for n in ("bailingmoe", "bailingmoe2", "llada-moe")},
    "seed-coder": _spec([_SEED_CODER], clean_spaces=False),
    "ufakzeka": _spec([_UFAKZEKA], clean_spaces=False),
    "grok-2": _spec([_QWEN2], clean_spaces=False),
    "laguna": _spec(["[^\n]+|[\n]+", _QWEN2], clean_spaces=False),
    "exaone-moe": _spec([_EXAONE_MOE]),
    "minicpm5": _spec(_MINICPM5, ignore_merges=True),
}
