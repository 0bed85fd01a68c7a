"""A trained translator: checkpoints, translating text, scoring with BLEU, and the checkpoint the course ships.

A checkpoint is one ``torch.save`` dict (read with ``weights_only=True``: no code runs on load) holding
the model's config and weights, the tokenizer's JSON, the training history and, for a run that can
resume, the optimiser and schedule (:func:`transformer_lib.train.save_checkpoint`). :func:`export_translator`
writes the small file that ships: fp16 weights, no optimiser state, plus how it was made and its scores.

:data:`SHIPPED` is the checkpoint in ``data/`` (trained with ``python -m transformer_lib.train``, see
``data/README.md``); :func:`load_translator` checks its SHA-256 before loading it.

Example:
    >>> from transformer_lib.tokenizer import BPETokenizer
    >>> from transformer_lib.model import TransformerConfig
    >>> tok = BPETokenizer.train(["I see the car.", "Je vois la voiture."], vocab_size=50, min_frequency=1)
    >>> model = Transformer(TransformerConfig.tiny(src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size))
    >>> len(translate(model, tok, ["I see the car."], max_len=8))
    1
    >>> round(corpus_bleu(["Je vois la voiture ."], ["Je vois la voiture ."]).score)
    100
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import sacrebleu
import tokenizers
import torch

from .corpus import GENERATED_DIR, build_generated_corpus
from ._validation import check_positive_int
from .data import DATA_DIR, DERIVED_DIR, load_splits, read_pairs_tsv, sha256_file, split_pairs, verify_sha256
from .decoding import beam_search, greedy_decode
from .model import Transformer, TransformerConfig
from .objective import label_smoothed_cross_entropy
from .tokenizer import BPETokenizer

__all__ = ["FORMAT", "SHIPPED", "SHIPPED_SHA256", "corpus_bleu", "export_translator", "load_checkpoint", "load_corpus",
           "load_translator", "model_from_checkpoint", "teacher_forced_loss", "translate"]

FORMAT = "transformer_lib/checkpoint-1"
SHIPPED = DATA_DIR / "translator_en_fr.pt"
SHIPPED_SHA256 = "eeea5d9d315171b6c270065223ac099093a6179532d8b7882c99b180d5ae373e"  # data/translator_en_fr.json


def _check_translate_args(model, tokenizer, texts, batch_size, max_len, name="sentences") -> None:
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a transformer_lib.model.Transformer; got {type(model).__name__}")
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"tokenizer must be a transformer_lib.tokenizer.BPETokenizer; got {type(tokenizer).__name__}")
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of str; for one sentence write [sentence]")
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must be a list of str; got {str(texts)[:60]}")
    check_positive_int(batch_size, "batch_size")
    if max_len is not None:
        check_positive_int(max_len, "max_len")


@torch.no_grad()
def translate(model: Transformer, tokenizer: BPETokenizer, sentences: Sequence[str], *, beam_size: int = 1,
              length_penalty: float = 0.6, batch_size: int = 64, max_len: int | None = None) -> list[str]:
    """Translate ``sentences``: greedy decoding, or beam search with ``beam_size > 1``; ids decoded to text.

    A sentence longer than ``max_len`` tokens (default: the model's ``max_len``) is cut, with its EOS kept,
    and a warning says so. The output of each sentence is at most ``2 * source length + 10`` tokens.
    No sentences give no translations (``[]``); an empty sentence ``""`` is translated like any other.
    """
    _check_translate_args(model, tokenizer, sentences, batch_size, max_len)
    check_positive_int(beam_size, "beam_size")
    device = next(model.parameters()).device
    limit = min(max_len or model.config.max_len, model.config.max_len)
    out: list[str] = []
    for start in range(0, len(sentences), batch_size):
        batch = list(sentences[start:start + batch_size])
        src, lengths = tokenizer.encode_batch(batch)  # (B, S), (B,)
        if src.shape[1] > limit:  # the decoders refuse a source longer than the model's max_len
            cut = [text for text, n in zip(batch, lengths.tolist()) if n > limit]
            warnings.warn(f"translate: {len(cut)} sentence(s) longer than max_len = {limit} tokens were truncated "
                          f"to {limit} tokens, e.g. {cut[0][:60]!r}", stacklevel=3)
            src, _ = tokenizer.encode_batch(batch, max_len=limit)  # (B, limit), EOS kept
        src = src.to(device)  # (B, S)
        steps = min(limit, 2 * src.shape[1] + 10)
        if beam_size > 1:
            ids = beam_search(model, src, steps, tokenizer.bos_id, tokenizer.eos_id, beam_size=beam_size,
                              length_penalty=length_penalty)
        else:
            ids = greedy_decode(model, src, steps, tokenizer.bos_id, tokenizer.eos_id)  # (B, L)
        out += [tokenizer.decode(row) for row in ids.cpu()]
    return out


@torch.no_grad()
def teacher_forced_loss(model: Transformer, tokenizer: BPETokenizer, pairs: Sequence[tuple[str, str]], *,
                        smoothing: float = 0.1, max_len: int | None = None, batch_size: int = 64,
                        amp: bool = False) -> float:
    """Label-smoothed cross-entropy per target token of ``model`` on ``(english, french)`` pairs, teacher-forced.

    The training loss (:func:`~transformer_lib.objective.label_smoothed_cross_entropy`) measured on other
    sentences: the decoder reads the reference ``<bos> y_1 ... y_n`` and is scored on ``y_1 ... y_n <eos>``.
    Sentences longer than ``max_len`` tokens (default: the model's) are cut, their EOS kept. ``amp``: bf16
    autocast, as in training. The model is used as it is (call ``model.eval()`` first for dropout off).
    """
    if isinstance(pairs, str) or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise TypeError(f"pairs must be a list of (english, french) pairs; got {str(pairs)[:60]}")
    texts = [text for pair in pairs for text in pair]
    _check_translate_args(model, tokenizer, texts, batch_size, max_len, name="pairs' texts")
    device, pad = next(model.parameters()).device, model.config.pad_id
    limit = min(max_len or model.config.max_len, model.config.max_len)
    total, count = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        src, tgt = (tokenizer.encode_batch([p[i] for p in batch], max_len=limit)[0].to(device) for i in (0, 1))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(src, tgt[:, :-1])  # (B, T, V)
        n = int((tgt[:, 1:] != pad).sum())  # target tokens, padding excluded
        total += float(label_smoothed_cross_entropy(logits.float(), tgt[:, 1:], pad_id=pad, smoothing=smoothing)) * n
        count += n
    return total / max(count, 1)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> sacrebleu.metrics.BLEUScore:
    """sacreBLEU's corpus BLEU (13a tokenisation, one reference each); ``.score`` is 0-100."""
    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{name} must be a list of str (one sentence each); got {str(texts)[:60]}")
    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses and references must have the same length; got {len(hypotheses)} "
                         f"and {len(references)}")
    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)])


def load_corpus(name: str = "generated", *, pairs: int = 200_000) -> dict[str, list[tuple[str, str]]]:
    """The train/valid/test splits of a corpus: ``generated`` (built on first use, ``pairs`` pairs), ``catalogs``
    (built by ``python -m transformer_lib.catalogs``), or the path of a ``.tsv`` file of pairs (split 98/1/1)."""
    if name == "generated":
        if not (GENERATED_DIR / "manifest.json").is_file():
            build_generated_corpus(GENERATED_DIR, pairs=pairs)
        return load_splits(GENERATED_DIR)
    if name == "catalogs":
        return load_splits(DERIVED_DIR)  # its error says how to build it
    return split_pairs(read_pairs_tsv(name), valid=0.01, test=0.01, seed=0)


def load_checkpoint(path: str | Path, sha256: str | None = None) -> dict:
    """Read a checkpoint (training or shipped); with ``sha256``, check the file first.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a corrupted file, a checksum that differs, or not a transformer_lib checkpoint.
    """
    path = Path(path)
    if sha256 is not None:
        verify_sha256(path, sha256)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (train one: python -m transformer_lib.train)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (a truncated zip, a text file, objects weights_only refuses...)
        text = str(err).strip()  # torch's own messages run to several lines: keep the first sentence
        reason = "it holds objects other than tensors and plain data" if text.startswith("Weights only load failed") \
            else type(err).__name__ + (f": {text.splitlines()[0].split('. ')[0]}" if text else "")
        raise ValueError(f"{path} is not a readable checkpoint (corrupted or truncated?): {reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a transformer_lib checkpoint (expected format {FORMAT!r})")
    return state


def model_from_checkpoint(state: dict, device: str | torch.device = "cpu") -> tuple[Transformer, BPETokenizer]:
    """The model (float32, eval mode) and tokenizer stored in a checkpoint dict."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"state must be a checkpoint dict of format {FORMAT!r}, as load_checkpoint returns; "
                         f"got {type(state).__name__}")
    model = Transformer(TransformerConfig(**state["config"]))
    model.load_state_dict({k: v.float() for k, v in state["model"].items()})
    tokenizer = BPETokenizer(tokenizers.Tokenizer.from_str(state["tokenizer"]))
    return model.to(device).eval(), tokenizer


def export_translator(model: Transformer, tokenizer: BPETokenizer, path: str | Path, **info) -> str:
    """Write the shippable checkpoint: fp16 weights, config, tokenizer and ``info`` (history, metrics, command...).

    Returns the file's SHA-256.
    """
    if not isinstance(model, Transformer) or not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"model must be a Transformer and tokenizer a BPETokenizer; got {type(model).__name__} and "
                        f"{type(tokenizer).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights, halves = {}, {}
    for name, tensor in model.state_dict().items():  # tied embeddings stay one tensor, stored once
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if tensor.is_floating_point():
            tensor = halves.setdefault(key, tensor.half())
        weights[name] = tensor
    state = {"format": FORMAT, "config": asdict(model.config), "model": weights,
             "tokenizer": tokenizer.tokenizer.to_str(), **info}
    torch.save(state, path)
    return sha256_file(path)


def load_translator(path: str | Path | None = None, *, sha256: str | None = None, device="cpu"):
    """The shipped translator (or the checkpoint at ``path``): ``(model, tokenizer, state)``.

    Without ``path`` the shipped file :data:`SHIPPED` is loaded after its SHA-256 is checked.
    """
    if path is None:
        path, sha256 = SHIPPED, sha256 or SHIPPED_SHA256
    state = load_checkpoint(path, sha256)
    model, tokenizer = model_from_checkpoint(state, device)
    return model, tokenizer, state
