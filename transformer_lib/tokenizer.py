"""A real BPE tokenizer for the translation notebooks (09-11), built with Hugging Face ``tokenizers``.

:mod:`transformer_lib.bpe` shows the algorithm in pure Python; here the same merges are learned in Rust,
fast enough for a whole corpus. Nothing is downloaded: the tokenizer is trained on the course's texts.

The pipeline, one stage per line of :func:`train_bpe_tokenizer`:

    normalizer     NFC: an accented letter is one character ("é", never "e" + a combining accent)
    pre-tokenizer  Metaspace: each space becomes "▁", glued to the next word ("▁vu"), so the pieces keep
                   the spaces and decoding is exact; then punctuation is isolated ("l", "'", "arbre", "."),
                   and each digit is a piece of its own (numbers never merge into one rare token)
    model          BPE, the four special tokens first: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3
                   (pad, BOS and EOS as in :mod:`transformer_lib.tasks`)
    decoder        Metaspace: pieces joined, "▁" back to a space

Round trip: ``decode(encode(text)) == text`` for NFC text whose characters were seen in training, with
no leading whitespace (the first space is the one "▁" the pre-tokenizer adds, so it is dropped): French
spaces before "?" and "!", apostrophes, hyphens, digits and repeated spaces all come back as they were.
A character never seen in training becomes ``<unk>`` (no byte fallback: the student sees what the
vocabulary lacks); :meth:`BPETokenizer.decode` shows it as ``<unk>``. Special-token names typed in a
text ("<eos>") are ordinary text, never the special ids.

Example:
    >>> tok = BPETokenizer(train_bpe_tokenizer(["j'ai vu l'arbre.", "Où est-ce que vous allez ?"] * 2, 100))
    >>> tok.tokens("j'ai vu l'arbre.")
    ['▁j', "'", 'ai', '▁vu', '▁l', "'", 'arbre', '.']
    >>> tok.decode(tok.encode("Où est-ce que vous allez ?"))
    'Où est-ce que vous allez ?'
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tokenizers
import torch
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from ._validation import check_positive_int
from .data import sha256_file, verify_sha256
from .tasks import BOS_ID, EOS_ID, PAD_ID

__all__ = ["BOS", "BOS_ID", "EOS", "EOS_ID", "PAD", "PAD_ID", "SPECIAL_TOKENS", "UNK", "UNK_ID", "BPETokenizer",
           "pad_rows", "train_bpe_tokenizer"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3: their position in this tuple
UNK_ID = 3
SPACE = "▁"  # U+2581, the Metaspace replacement of " " (as in SentencePiece)


def _text_list(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` as a list of str, or a clear error (one str is not a list of texts)."""
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        got = f"one str {texts!r:.40}" if isinstance(texts, str) else type(texts).__name__
        raise TypeError(f"{name} must be an iterable of str (e.g. a list of sentences); got {got}")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name} must hold str; {name}[{i}] is {type(text).__name__} {text!r:.40}")
    return texts


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> tokenizers.Tokenizer:
    """Train a BPE tokenizer on ``texts``: NFC, Metaspace + punctuation + digits, the specials at ids 0-3.

    Deterministic: the same texts give the same vocabulary, merges and saved file.

    Args:
        texts: the training sentences (read once).
        vocab_size: the largest vocabulary, special tokens included; a small corpus may give fewer.
        min_frequency: a pair seen fewer times than this is never merged.

    Returns:
        A ``tokenizers.Tokenizer`` whose ``encode`` adds ``<bos>`` ... ``<eos>``; wrap it in :class:`BPETokenizer`.

    Example:
        >>> tok = train_bpe_tokenizer(["le chat", "le chien"], vocab_size=30, min_frequency=1)
        >>> [tok.id_to_token(i) for i in range(4)], tok.encode("le chat").tokens
        (['<pad>', '<bos>', '<eos>', '<unk>'], ['<bos>', '▁le', '▁chat', '<eos>'])
    """
    texts = _text_list(texts)
    if check_positive_int(vocab_size, "vocab_size") <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be > {len(SPECIAL_TOKENS)} (the special tokens); got {vocab_size}")
    check_positive_int(min_frequency, "min_frequency")
    if not any(text.strip() for text in texts):
        raise ValueError("texts must hold at least one non-blank sentence to learn from")
    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always"),  # "▁j'ai", "▁vu", "▁l'arbre."
        pre_tokenizers.Punctuation("isolated"),  # "▁j", "'", "ai", "▁vu", "▁l", "'", "arbre", "."
        pre_tokenizers.Digits(individual_digits=True),  # "42" -> "4", "2"
    ])
    tokenizer.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, BOS_ID), (EOS, EOS_ID)])
    return tokenizer


class BPETokenizer:
    """The course's tokenizer: text to ids (``<bos>`` ... ``<eos>``), batches of ids, and back.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` from :func:`train_bpe_tokenizer` (or loaded from its file);
            its ids 0-3 must be ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``.

    Attributes:
        pad_id, bos_id, eos_id, unk_id: 0, 1, 2, 3.
        tokenizer: the wrapped ``tokenizers.Tokenizer``.

    Example:
        >>> tok = BPETokenizer.train(["le chat dort", "le chien dort"], vocab_size=40, min_frequency=1)
        >>> ids, lengths = tok.encode_batch(["le chat dort", "le chien"])
        >>> ids.shape, lengths.tolist()
        (torch.Size([2, 5]), [5, 4])
        >>> tok.decode(ids[1])
        'le chien'
    """

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, tokenizer: tokenizers.Tokenizer) -> None:
        if not isinstance(tokenizer, tokenizers.Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer (see train_bpe_tokenizer); "
                            f"got {type(tokenizer).__name__}")
        found = [tokenizer.id_to_token(i) for i in range(len(SPECIAL_TOKENS))]
        if found != list(SPECIAL_TOKENS):
            raise ValueError(f"the tokenizer's ids 0-3 must be the special tokens {list(SPECIAL_TOKENS)}; got {found}")
        tokenizer.encode_special_tokens = True  # "<eos>" typed in a text is text (not saved in the file: set here)
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> BPETokenizer:
        """``BPETokenizer(train_bpe_tokenizer(texts, vocab_size, min_frequency))``."""
        return cls(train_bpe_tokenizer(texts, vocab_size, min_frequency))

    @property
    def vocab_size(self) -> int:
        """The number of ids, special tokens included (the model's ``V``)."""
        return self.tokenizer.get_vocab_size()

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"

    def token_to_id(self, token: str) -> int:
        """The id of ``token`` (a piece such as ``"▁chat"``); ``KeyError`` if it is not in the vocabulary."""
        index = self.tokenizer.token_to_id(token) if isinstance(token, str) else None
        if index is None:
            raise KeyError(f"{token!r} is not in the vocabulary (pieces start with {SPACE!r} after a space)")
        return index

    def id_to_token(self, index: int) -> str:
        """The piece of id ``index``, in ``[0, vocab_size)``."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < self.vocab_size:
            raise ValueError(f"index must be an int in [0, {self.vocab_size}); got {index!r}")
        return self.tokenizer.id_to_token(int(index))

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text``, without ``<bos>``/``<eos>``: what the model reads, as strings."""
        return self.tokenizer.encode(_one_text(text), add_special_tokens=False).tokens

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        """The ids of ``text``: ``[bos_id, ..., eos_id]``, or only the pieces' ids with ``add_special=False``."""
        return self.tokenizer.encode(_one_text(text), add_special_tokens=add_special).ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of ``ids``; ``<pad>``, ``<bos>`` and ``<eos>`` are skipped, ``<unk>`` is shown as ``<unk>``.

        Args:
            ids: a list of ids or a 1-D tensor (one row of :meth:`encode_batch`'s output).
        """
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 1:
                raise ValueError(f"ids must be a 1-D tensor (one sequence); got shape {tuple(ids.shape)}: "
                                 f"decode each row, e.g. [tok.decode(row) for row in ids]")
            ids = ids.tolist()
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            raise TypeError(f"ids must be a list of int or a 1-D tensor; got {type(ids).__name__}")
        bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, numbers.Integral)
               or not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids must be ints in [0, {self.vocab_size}); got {bad[0]!r}")
        kept = [int(i) for i in ids if i not in (self.pad_id, self.bos_id, self.eos_id)]
        return self.tokenizer.decode(kept, skip_special_tokens=False)

    def encode_many(self, texts: Sequence[str], max_len: int | None = None,
                    add_special: bool = True) -> list[list[int]]:
        """The ids of several texts, one list each, not padded (the rows of :meth:`encode_batch`).

        A sequence longer than ``max_len`` is cut to ``max_len`` ids and, with specials, its last id is
        replaced by ``<eos>``, so every row still ends with ``<eos>``.
        """
        texts = _text_list(texts)
        if not texts:
            raise ValueError("texts must hold at least one text")
        if max_len is not None and check_positive_int(max_len, "max_len") < 2 and add_special:
            raise ValueError(f"max_len must be >= 2 with add_special=True (room for <bos> and <eos>); got {max_len}")
        rows = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=add_special)]
        if max_len is None:
            return rows
        return [row if len(row) <= max_len else row[:max_len - 1] + [self.eos_id] if add_special else row[:max_len]
                for row in rows]

    def encode_batch(self, texts: Sequence[str], max_len: int | None = None,
                     add_special: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode several texts into one padded tensor.

        Each row is ``[bos, ..., eos]`` padded with ``pad_id`` to the longest row of the batch (not to
        ``max_len``). A sequence longer than ``max_len`` is cut as :meth:`encode_many` says.

        Args:
            texts: the sentences (at least one).
            max_len: the most ids per row, specials included (``>= 2`` with specials), or ``None``.
            add_special: add ``<bos>`` and ``<eos>``.

        Shape:
            ids: ``(B, T)`` long, ``T = lengths.max()``; lengths: ``(B,)`` long, ids per row before padding.

        Returns:
            ``(ids, lengths)``.
        """
        rows = self.encode_many(texts, max_len, add_special)
        lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)  # (B,)
        return pad_rows(rows, self.pad_id), lengths  # (B, T), (B,)

    def save(self, path: str | Path) -> str:
        """Write the tokenizer's JSON file to ``path`` (folders created); return its SHA-256 for :meth:`load`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(path), pretty=True)
        return sha256_file(path)

    @classmethod
    def load(cls, path: str | Path, sha256: str | None = None) -> BPETokenizer:
        """Read a tokenizer saved by :meth:`save`; with ``sha256``, check the file's checksum first.

        Raises:
            FileNotFoundError: the file is missing.
            ValueError: the checksum differs, or the file is not a tokenizer's JSON.
        """
        path = Path(path)
        if sha256 is not None:
            verify_sha256(path, sha256)
        elif not path.is_file():
            raise FileNotFoundError(f"{path} is missing: train a tokenizer and write it with BPETokenizer.save(path)")
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception on a bad file
            raise ValueError(f"{path} is not a tokenizer JSON file (corrupted or truncated?): {err}") from err
        return cls(tokenizer)


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    """Lists of ids as one ``(B, L)`` long tensor, each padded with ``pad_id`` to the longest, ``L``.

    Example:
        >>> pad_rows([[1, 5, 2], [1, 2]], pad_id=0).tolist()
        [[1, 5, 2], [1, 2, 0]]
    """
    if isinstance(rows, (str, torch.Tensor)) or not isinstance(rows, Sequence) or not rows:
        raise ValueError(f"rows must be a non-empty list of lists of ids; got {str(rows)[:60]}")
    if isinstance(pad_id, bool) or not isinstance(pad_id, numbers.Integral):
        raise TypeError(f"pad_id must be an int; got {type(pad_id).__name__} {pad_id!r}")
    out = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)  # (B, L)
    for b, row in enumerate(rows):
        out[b, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _one_text(text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__} (for several texts use encode_batch)")
    return text
