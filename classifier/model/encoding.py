"""Encoder input from (target, context, comment) triples, with the Rust ``tokenizers`` only.

Neither torch nor transformers is imported here: the ONNX runtime
(:mod:`classifier.model.onnx_predictor`) encodes with this module alone, and the torch model
(:class:`classifier.model.network.ThreadguardModel`) uses the same class over its
transformers tokenizer, so both paths build identical token ids.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from tokenizers import Tokenizer

#: The files of a saved tokenizer that :meth:`InputEncoder.from_folder` reads.
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


# Runs of pictographs and the characters that join or modify them (variation selectors, the
# zero-width joiner, skin tones, flag letters). Most pictographs are not in a BERT vocabulary:
# tokenised as they are, "🖕" and "😂😂" both become one [UNK].
EMOJI_RUN = re.compile(
    "[\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff\ufe0e\ufe0f\u200d]+"
)
_EMOJI_SILENT = re.compile("[\ufe0e\ufe0f\u200d\U0001f1e6-\U0001f1ff\U0001f3fb-\U0001f3ff]")


def emoji_to_words(text: str) -> str:
    """Spell each pictograph out by its Unicode name ("🖕" → "reversed hand with middle
    finger extended"), so an encoder whose vocabulary lacks them reads what they say.

    A run of the same pictograph is named once; joiners, variation selectors, skin tones
    and flag letters are dropped; a pictograph without a name is dropped.
    """

    def spell(match: re.Match[str]) -> str:
        names: list[str] = []
        for char in _EMOJI_SILENT.sub("", match.group()):
            name = unicodedata.name(char, "").lower()
            if name and (not names or names[-1] != name):
                names.append(name)
        return f" {' , '.join(names)} " if names else " "

    return EMOJI_RUN.sub(spell, text)


@dataclass(frozen=True)
class EncodedInput:
    """One example's unpadded encoder input(s), as built by :class:`InputEncoder`.

    ``len()`` is the number of tokens of the (pair) input.
    """

    input_ids: list[int]
    token_type_ids: list[int]
    comment_mask: list[bool]
    comment_input_ids: list[int] | None = None
    comment_token_type_ids: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


# One element of a post-processor layout: (special token id, None, type id) for a
# special token, or (None, sequence index, type id) for where a sequence goes.
_Slot = tuple[int | None, int | None, int]


class InputEncoder:
    """Tokenises (target, context, comment) triples so the comment is never lost.

    The first sequence is ``context [SEP] target``, the second the comment. Each
    piece is tokenised without special tokens, then the token budget
    ``max_length`` (minus the special tokens) is shared: the comment gets its
    whole length, capped so that ``min_target_tokens`` remain for the first
    sequence; the target gets what is left, and the context only what the
    target does not need (so a long article title or source post is trimmed
    first). Special tokens and token type ids come from the tokenizer's own
    post-processor (probed once), so BERT-, RoBERTa- and DeBERTa-style pair
    formats all work. An empty target gives a single-sequence input.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``, or a transformers fast tokenizer (its
            ``backend_tokenizer`` is used, and its pad/sep tokens, padding side and
            whether the model takes token type ids are read from it).
        emoji_words: spell pictographs out (:func:`emoji_to_words`) in every
            text, target and context before tokenising.
        with_types, pad_token_id, sep_token_id, padding_side: override what is
            read from a transformers tokenizer; for a bare ``Tokenizer``, defaults
            are derived from its post-processor (types: whether a pair has any
            type id other than 0; sep: the first special token after the first
            sequence) and ``pad_token_id`` is required.
    """

    def __init__(
        self,
        tokenizer: Any,
        max_length: int = 256,
        *,
        min_target_tokens: int = 32,
        comment_only: bool = False,
        emoji_words: bool = False,
        with_types: bool | None = None,
        pad_token_id: int | None = None,
        sep_token_id: int | None = None,
        padding_side: Literal["left", "right"] | None = None,
    ) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        if not isinstance(backend, Tokenizer):
            raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer")
        self.tokenizer = tokenizer
        # A private copy: transformers changes its backend's truncation and padding per call.
        self._tok = Tokenizer.from_str(backend.to_str())
        self._tok.no_truncation()
        self._tok.no_padding()
        self.max_length = max_length
        self.min_target_tokens = min_target_tokens
        self.comment_only = comment_only
        self.emoji_words = emoji_words
        self._single = self._layout(pair=False)
        self._pair = self._layout(pair=True)
        self._n_single = sum(1 for s in self._single if s[0] is not None)
        self._n_pair = sum(1 for s in self._pair if s[0] is not None)
        if max_length - self._n_pair < 2:
            raise ValueError(f"max_length {max_length} leaves no room for a sentence pair")
        is_hf = backend is not tokenizer
        if with_types is None:
            with_types = (
                "token_type_ids" in tokenizer.model_input_names
                if is_hf
                else any(t for _, _, t in self._pair)
            )
        if sep_token_id is None:
            sep_token_id = tokenizer.sep_token_id if is_hf else self._first_separator()
        if pad_token_id is None:
            pad_token_id = tokenizer.pad_token_id if is_hf else None
        if pad_token_id is None:
            raise ValueError("the tokenizer has no padding token; pass pad_token_id")
        self.with_types = bool(with_types)
        self.pad_token_id = int(pad_token_id)
        self.padding_side = padding_side or (tokenizer.padding_side if is_hf else "right")
        self._sep = [sep_token_id] if sep_token_id is not None else []

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        max_length: int = 256,
        *,
        min_target_tokens: int = 32,
        comment_only: bool = False,
        emoji_words: bool = False,
        with_types: bool | None = None,
    ) -> InputEncoder:
        """Build from a saved tokenizer's ``tokenizer.json`` and ``tokenizer_config.json``.

        What transformers would read of them (pad and sep tokens, padding side) is
        read here without importing it.
        """
        folder = Path(folder)
        path = folder / TOKENIZER_FILE
        if not path.exists():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {folder} (a fast tokenizer's file)")
        tok = Tokenizer.from_file(str(path))
        config_path = folder / TOKENIZER_CONFIG_FILE
        config: dict[str, Any] = (
            json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
        )

        def token_id(key: str) -> int | None:
            token = config.get(key)
            if isinstance(token, dict):  # an AddedToken written out
                token = token.get("content")
            return tok.token_to_id(token) if isinstance(token, str) else None

        pad = token_id("pad_token")
        if pad is None and tok.padding is not None:
            pad = int(tok.padding["pad_id"])
        side = config.get("padding_side", "right")
        if side not in ("left", "right"):
            raise ValueError(f"{config_path}: padding_side {side!r} is not 'left' or 'right'")
        return cls(
            tok,
            max_length,
            min_target_tokens=min_target_tokens,
            comment_only=comment_only,
            emoji_words=emoji_words,
            with_types=with_types,
            pad_token_id=pad,
            sep_token_id=token_id("sep_token"),
            padding_side=side,
        )

    def _layout(self, pair: bool) -> list[_Slot]:
        """Probe the post-processor for where specials and sequences go."""
        probe = self._tok.encode("a", "b" if pair else None, add_special_tokens=True)
        layout: list[_Slot] = []
        for token, seq, typ in zip(probe.ids, probe.sequence_ids, probe.type_ids, strict=True):
            if seq is None:
                layout.append((token, None, typ))
            elif not layout or layout[-1][1] != seq:
                layout.append((None, seq, typ))
        return layout

    def _first_separator(self) -> int | None:
        seen_first = False
        for special, seq, _ in self._pair:
            seen_first = seen_first or seq == 0
            if seen_first and special is not None:
                return special
        return None

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each distinct text (no special tokens, no truncation)."""
        unique = list(dict.fromkeys(texts))
        if not unique:
            return []
        spelled = [emoji_to_words(t) for t in unique] if self.emoji_words else unique
        encodings = self._tok.encode_batch(spelled, add_special_tokens=False)
        by_text = {t: e.ids for t, e in zip(unique, encodings, strict=True)}
        return [by_text[t] for t in texts]

    def alignment(
        self, texts: Sequence[str]
    ) -> list[tuple[list[tuple[int, int]], list[int | None]]]:
        """Each text's tokens as :meth:`encode` and :meth:`windows` take them (no special
        tokens): their character offsets into the text as given, and their word ids.

        Raises ``ValueError`` with ``emoji_words``: spelled-out pictographs have no
        characters of the original text.
        """
        if self.emoji_words:
            raise ValueError("token offsets are not defined with emoji_words")
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [(list(e.offsets), list(e.word_ids)) for e in encodings]

    def _build(
        self, layout: list[_Slot], parts: Sequence[list[int]], comment_seq: int
    ) -> tuple[list[int], list[int], list[bool]]:
        ids: list[int] = []
        types: list[int] = []
        mask: list[bool] = []
        for special, seq, typ in layout:
            piece = [special] if special is not None else parts[cast(int, seq)]
            ids += piece
            types += [typ] * len(piece)
            mask += [seq == comment_seq] * len(piece)
        return ids, types, mask

    def encode(
        self,
        targets: Sequence[str],
        contexts: Sequence[str] | None,
        texts: Sequence[str],
    ) -> list[EncodedInput]:
        """Encode each example without padding (see :meth:`collate`)."""
        n = len(texts)
        contexts = list(contexts) if contexts is not None else [""] * n
        if len(targets) != n or len(contexts) != n:
            raise ValueError(f"got {len(targets)} targets, {len(contexts)} contexts and {n} texts")
        comment_ids = self._tokenize(texts)
        target_ids = self._tokenize([t if t.strip() else "" for t in targets])
        context_ids = self._tokenize([c if c.strip() else "" for c in contexts])
        single_room = self.max_length - self._n_single
        pair_room = self.max_length - self._n_pair
        out = []
        for comment, target, context in zip(comment_ids, target_ids, context_ids, strict=True):
            alone = None
            if self.comment_only:
                alone = self._build(self._single, [comment[:single_room]], comment_seq=0)
            if not target:
                ids, types, mask = self._build(self._single, [comment[:single_room]], 0)
            else:
                first_full = len(target) + (len(self._sep) + len(context) if context else 0)
                reserve = min(self.min_target_tokens, pair_room // 2, first_full)
                n_comment = min(len(comment), pair_room - reserve)
                first_room = pair_room - n_comment
                n_target = min(len(target), first_room)
                n_context = first_room - n_target - len(self._sep)
                first = target[:n_target]
                if context and n_context > 0:
                    first = context[:n_context] + self._sep + first
                ids, types, mask = self._build(self._pair, [first, comment[:n_comment]], 1)
            out.append(
                EncodedInput(
                    ids,
                    types,
                    mask,
                    alone[0] if alone else None,
                    alone[1] if alone else None,
                )
            )
        return out

    def windows(self, texts: Sequence[str], overlap: int = 16) -> list[tuple[int, EncodedInput]]:
        """Each comment alone, whole, as windows of at most ``max_length`` tokens.

        Returns ``(index into texts, window)`` pairs, every text at least one window
        (an empty text gives one with no comment tokens). Consecutive windows of a
        long comment share ``overlap`` tokens, so no phrase is only ever seen cut in
        two; a comment that fits is one window, the same input :meth:`encode` gives
        it with no target.
        """
        room = self.max_length - self._n_single
        if not 0 <= overlap < room:
            raise ValueError(f"overlap must be in [0, {room}), got {overlap}")
        step = room - overlap
        out: list[tuple[int, EncodedInput]] = []
        for index, ids in enumerate(self._tokenize(list(texts))):
            starts = range(0, max(len(ids) - overlap, 1), step)
            for start in starts:
                built = self._build(self._single, [ids[start : start + room]], comment_seq=0)
                out.append((index, EncodedInput(*built)))
        return out

    def truncated(self, max_length: int) -> InputEncoder:
        """This encoder with another ``max_length`` (the same tokenizer and layout): how
        the one-pass model reads a target, cut shorter than a comment."""
        if max_length - self._n_pair < 2:
            raise ValueError(f"max_length {max_length} leaves no room for a sentence pair")
        out = copy.copy(self)
        out.max_length = max_length
        return out

    def window_step(self, overlap: int) -> int:
        """How many tokens each window of :meth:`windows` starts after the one before."""
        return self.max_length - self._n_single - overlap

    def collate(self, encoded: Sequence[EncodedInput], return_tensors: str = "pt") -> Any:
        """Pad encoded examples into one batch.

        Keys: ``input_ids``, ``attention_mask``, ``token_type_ids`` (only when the
        model takes them), ``comment_mask`` (bool, True on the comment's tokens)
        and, with ``comment_only``, the same three model inputs of the comment
        alone prefixed ``comment_``. ``return_tensors="np"``: a dict of int64 (and
        bool) numpy arrays; ``"pt"``: a transformers ``BatchEncoding`` of torch
        tensors (imports them).
        """
        if not encoded:
            raise ValueError("cannot collate an empty batch")
        if return_tensors not in ("np", "pt"):
            raise ValueError(f"return_tensors must be 'np' or 'pt', got {return_tensors!r}")
        data = self._pad([e.input_ids for e in encoded], [e.token_type_ids for e in encoded])
        data["comment_mask"] = self._pad_rows([e.comment_mask for e in encoded], False, bool)
        if self.comment_only:
            alone = self._pad(
                [cast(list[int], e.comment_input_ids) for e in encoded],
                [cast(list[int], e.comment_token_type_ids) for e in encoded],
            )
            data.update({f"comment_{k}": v for k, v in alone.items()})
        if return_tensors == "np":
            return data
        from transformers import BatchEncoding

        return BatchEncoding(data, tensor_type="pt")

    def _pad_rows(self, rows: Sequence[Sequence[Any]], value: Any, dtype: Any) -> np.ndarray:
        width = max(len(r) for r in rows)
        out = np.full((len(rows), width), value, dtype=dtype)
        left = self.padding_side == "left"
        for i, row in enumerate(rows):
            if row:
                if left:
                    out[i, width - len(row) :] = row
                else:
                    out[i, : len(row)] = row
        return out

    def _pad(self, ids: list[list[int]], types: list[list[int]]) -> dict[str, np.ndarray]:
        data = {
            "input_ids": self._pad_rows(ids, self.pad_token_id, np.int64),
            "attention_mask": self._pad_rows([[1] * len(r) for r in ids], 0, np.int64),
        }
        if self.with_types:
            data["token_type_ids"] = self._pad_rows(types, 0, np.int64)
        return data

    def __call__(
        self,
        targets: Sequence[str],
        contexts: Sequence[str] | None,
        texts: Sequence[str],
        return_tensors: str = "pt",
    ) -> Any:
        """Encode and pad in one go."""
        return self.collate(self.encode(targets, contexts, texts), return_tensors)


__all__ = ["TOKENIZER_CONFIG_FILE", "TOKENIZER_FILE", "EncodedInput", "InputEncoder"]
