"""The Tokenizer: text <-> token ids for a GGUF model, matching llama.cpp."""
from __future__ import annotations

from typing import Any

from .bpe import BPE
from .pieces import Pieces
from .special import SpecialSplitter
from .spm import SPM
from .stream import StreamDecoder
from .vocab import Vocab
from .ugm import UGM
from .wpm import WPM


class Tokenizer:
    """Built from GGUF metadata alone (`Tokenizer.from_metadata(gguf.metadata)`)."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        if vocab.is_spm:
            self._model = SPM(vocab)
        elif vocab.is_wpm:
            self._model = WPM(vocab)
        elif vocab.is_ugm:
            self._model = UGM(vocab, vocab.charsmap, vocab.remove_extra_whitespaces)
        else:
            self._model = BPE(vocab)
        self._pieces = Pieces(vocab)
        self._specials = SpecialSplitter(vocab)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> "Tokenizer":
        return cls(Vocab.from_metadata(metadata))

    # -- facts the generation loop needs -------------------------------------------------
    @property
    def kind(self) -> str:
        """'spm' or 'bpe:<pre-tokenizer>'."""
        v = self.vocab
        return "spm" if v.is_spm else "wpm" if v.is_wpm else "ugm" if v.is_ugm else f"bpe:{v.pre}"

    @property
    def n_vocab(self) -> int:
        return len(self.vocab.tokens)

    @property
    def bos_id(self) -> int | None:
        return self.vocab.ids["bos"]

    @property
    def eos_id(self) -> int | None:
        return self.vocab.ids["eos"]

    @property
    def eot_id(self) -> int | None:
        return self.vocab.ids["eot"]

    @property
    def eom_id(self) -> int | None:
        return self.vocab.ids["eom"]

    @property
    def stop_ids(self) -> frozenset[int]:
        """Every id that ends generation (llama.cpp's EOG set)."""
        return frozenset(self.vocab.eog_ids)

    def is_stop(self, token_id: int) -> bool:
        return token_id in self.vocab.eog_ids

    @property
    def add_bos(self) -> bool:
        return self.vocab.add_bos

    @property
    def add_eos(self) -> bool:
        return self.vocab.add_eos

    def token_text(self, token_id: int) -> str:
        return self.vocab.tokens[token_id]

    def token_id(self, text: str) -> int | None:
        return self.vocab.token_to_id.get(text)

    # -- text -> ids ---------------------------------------------------------------------
    def encode(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """llama_tokenize: BOS/EOS per metadata when `add_special`; control tokens written
        in the text become their ids only when `parse_special`."""
        v = self.vocab
        out: list[int] = []
        if add_special and (v.add_bos or v.is_wpm):  # WordPiece always opens with [CLS]
            if v.ids["bos"] is None:
                raise ValueError("add_bos_token is set but the vocab has no BOS token")
            out.append(v.ids["bos"])
        prev_special = True  # SPM prefixes a space to text at the start or after a special
        for frag in self._specials.split(text, parse_special):
            if isinstance(frag, int):
                out.append(frag)
                prev_special = True
                continue
            piece = text[frag[0]:frag[1]]
            if v.is_spm:
                if v.add_space_prefix and prev_special:
                    piece = " " + piece
                piece = piece.replace(" ", "\u2581")
            elif v.escape_whitespaces and not v.is_ugm:  # SPM-style BPE; Unigram escapes itself
                piece = piece.replace(" ", "\u2581")
            out.extend(self._model.encode(piece))
            prev_special = False
        if add_special and v.is_wpm:  # ... and closes with [SEP]
            if v.ids["sep"] is None:
                raise ValueError("a WordPiece vocab needs a separator token (tokenizer.ggml.seperator_token_id)")
            out.append(v.ids["sep"])
        elif add_special and v.add_eos:
            if v.ids["eos"] is None:
                raise ValueError("add_eos_token is set but the vocab has no EOS token")
            out.append(v.ids["eos"])
        return out

    # -- ids -> text ---------------------------------------------------------------------
    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        """llama_token_to_piece (lstrip 0): the token's bytes, which may be part of a character."""
        return self._pieces.piece(token_id, special)

    def detokenize(self, ids: list[int], remove_special: bool = False, unparse_special: bool = False) -> bytes:
        """llama_detokenize, bytes for bytes (including its clean-up of spaces)."""
        return self._pieces.detokenize(ids, remove_special, unparse_special)

    def decode(self, ids: list[int], special: bool = False) -> str:
        """Concatenated pieces as text (what a stream of `StreamDecoder.feed` adds up to)."""
        piece = self._pieces.piece
        return b"".join(piece(i, special) for i in ids).decode("utf-8", "replace")

    def stream(self, special: bool = False) -> StreamDecoder:
        return StreamDecoder(self._pieces.piece, special)
