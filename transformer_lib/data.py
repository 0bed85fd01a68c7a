"""English->French sentence pairs for the translation notebooks (09-11): files, checksums and splits.

A pair file is tab-separated, one pair a line: ``english<TAB>french[<TAB>attribution]``, the format of
the Tatoeba / ManyThings ``fra-eng`` files (:func:`read_pairs_tsv`). Offline, the pairs come from the
machine's gettext catalogs (:mod:`transformer_lib.catalogs`, whose ``build_catalog_corpus`` writes them
at set-up time); online, :func:`download` fetches a file and checks its SHA-256 first.

:func:`split_pairs` splits by unique English sentence, so a sentence and its duplicates (two French
translations of one English sentence) land in the same split and the test set holds no sentence seen
in training. :func:`write_splits` writes ``train.tsv``, ``valid.tsv``, ``test.tsv`` and ``manifest.json``
(size and SHA-256 of each file); :func:`load_splits` checks every checksum before it returns a pair.

Example:
    >>> pairs = [("I am here.", "Je suis ici."), ("Hello.", "Bonjour."), ("Hello.", "Salut.")]
    >>> splits = split_pairs(pairs, valid=0.0, test=0.5, seed=0)
    >>> splits["test"], splits["train"]
    ([('Hello.', 'Bonjour.'), ('Hello.', 'Salut.')], [('I am here.', 'Je suis ici.')])
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["DATA_DIR", "DERIVED_DIR", "SPLITS", "read_pairs_tsv", "write_pairs_tsv", "sha256_file", "verify_sha256",
           "download", "split_pairs", "vocabulary", "write_splits", "load_splits"]

Pair = tuple[str, str]
DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # the course's data/, wherever the notebook runs
# Built on the student's machine at set-up time, never committed (the catalogs keep their own licences).
DERIVED_DIR = DATA_DIR / "derived"
SPLITS = ("train", "valid", "test")
MANIFEST = "manifest.json"


def read_pairs_tsv(path: str | Path, *, max_pairs: int | None = None) -> list[Pair]:
    """Read ``english<TAB>french[<TAB>attribution...]`` lines; the attribution columns are dropped.

    Blank lines are skipped; a UTF-8 byte-order mark is ignored.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line has fewer than two columns or an empty side (the message names file and line).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = Path(d) / "fra.txt"
        ...     _ = path.write_text("Go.\\tVa !\\tCC-BY 2.0 (France) Attribution: tatoeba.org\\n", encoding="utf-8")
        ...     read_pairs_tsv(path)
        [('Go.', 'Va !')]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file {path} does not exist (expected english<TAB>french lines)")
    if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 0):
        raise ValueError(f"max_pairs must be None or an int >= 0; got {max_pairs!r}")
    pairs: list[Pair] = []
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
                raise ValueError(f"{path}, line {number}: expected english<TAB>french[<TAB>attribution]; "
                                 f"got {line[:60]!r}")
            pairs.append((columns[0].strip(), columns[1].strip()))
    return pairs


def write_pairs_tsv(pairs: Iterable[Pair], path: str | Path) -> Path:
    """Write pairs as ``english<TAB>french`` lines (UTF-8, ``\\n``), the format :func:`read_pairs_tsv` reads.

    Raises:
        ValueError: a side is empty or contains a tab or a line break (it would break the format).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = write_pairs_tsv([("Thank you.", "Merci.")], Path(d) / "pairs.tsv")
        ...     path.read_text(encoding="utf-8")
        'Thank you.\\tMerci.\\n'
    """
    lines = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise TypeError(f"pairs[{i}] must be a (english, french) pair of str; got {pair!r}")
        if any(not s.strip() or any(c in s for c in "\t\r\n") for s in pair):
            raise ValueError(f"pairs[{i}] must have two non-empty sides without tabs or line breaks; got {pair!r}")
        lines.append(f"{pair[0]}\t{pair[1]}\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(lines)
    return path


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (Path(d) / "empty").write_bytes(b"")
        ...     sha256_file(Path(d) / "empty")[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(sha256: object) -> str:
    if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
        raise ValueError(f"sha256 must be 64 hex digits; got {sha256!r}")
    return sha256.lower()


def verify_sha256(path: str | Path, sha256: str) -> Path:
    """Check that ``path`` exists and that its SHA-256 is ``sha256``; return the path.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the checksum differs; the message names the file, the expected and the actual hash.

    Example:
        >>> verify_sha256("no_such_file.tsv", "0" * 64)
        Traceback (most recent call last):
        ...
        FileNotFoundError: no_such_file.tsv is missing (expected a file with SHA-256 0000...)
    """
    path, sha256 = Path(path), _check_sha256(sha256)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (expected a file with SHA-256 {sha256[:4]}...)")
    actual = sha256_file(path)
    if actual != sha256:
        raise ValueError(f"{path} is corrupted or has changed: SHA-256 expected {sha256}, got {actual}")
    return path


def download(url: str, path: str | Path, sha256: str) -> Path:
    """Fetch ``url`` to ``path`` and check its SHA-256 (for students with internet; never run by the course).

    A file already at ``path`` with the right checksum is kept (no download). The data goes to a
    temporary file beside ``path`` and is renamed only once its checksum matches, so a failed or
    corrupted download leaves no file behind.

    Raises:
        ValueError: the downloaded bytes have another SHA-256 (the message names url, expected, actual).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     source = write_pairs_tsv([("Hi.", "Salut.")], Path(d) / "source.tsv")
        ...     got = download(source.as_uri(), Path(d) / "copy.tsv", sha256_file(source))
        ...     read_pairs_tsv(got)
        [('Hi.', 'Salut.')]
    """
    path, sha256 = Path(path), _check_sha256(sha256)
    if path.is_file() and sha256_file(path) == sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        urllib.request.urlretrieve(url, partial)
        try:
            verify_sha256(partial, sha256)
        except ValueError as err:
            raise ValueError(f"download of {url} to {path} failed its check: {err}") from None
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def split_pairs(pairs: Sequence[Pair], *, valid: float = 0.1, test: float = 0.1,
                seed: int = 0) -> dict[str, list[Pair]]:
    """Split pairs into ``train``/``valid``/``test`` by unique English sentence, reproducibly from ``seed``.

    The unique sources are sorted, shuffled with ``random.Random(seed)`` and cut into fractions
    ``valid`` and ``test`` (train gets the rest); every pair follows its source, so no English sentence
    is in two splits. Within a split, pairs keep their input order. Exact duplicate pairs are kept once.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``.

    Example:
        >>> pairs = [(f"Sentence {i}.", f"Phrase {i}.") for i in range(10)]
        >>> {name: len(part) for name, part in split_pairs(pairs, valid=0.2, test=0.1).items()}
        {'train': 7, 'valid': 2, 'test': 1}
    """
    for name, value in (("valid", valid), ("test", test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1); got {value!r}")
    if valid + test >= 1.0:
        raise ValueError(f"valid + test must be < 1 (train needs the rest); got {valid} + {test}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {type(seed).__name__} {seed!r}")
    for i, pair in enumerate(pairs):  # one str would unpack into two characters
        if isinstance(pair, str) or not (isinstance(pair, Sequence) and len(pair) == 2):
            raise TypeError(f"pairs[{i}] must be an (english, french) pair; got {pair!r:.60}")
    unique = list(dict.fromkeys((str(s), str(t)) for s, t in pairs))
    sources = sorted({s for s, _ in unique})
    random.Random(seed).shuffle(sources)
    n_test, n_valid = round(test * len(sources)), round(valid * len(sources))
    split_of = {s: "test" for s in sources[:n_test]}
    split_of.update({s: "valid" for s in sources[n_test:n_test + n_valid]})
    splits: dict[str, list[Pair]] = {name: [] for name in SPLITS}
    for pair in unique:
        splits[split_of.get(pair[0], "train")].append(pair)
    return splits


def write_splits(splits: dict[str, Sequence[Pair]], directory: str | Path) -> Path:
    """Write ``<split>.tsv`` for each split and ``manifest.json`` (pairs, bytes, SHA-256 of each file).

    Returns:
        The manifest's path.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     manifest = write_splits({"train": [("Yes.", "Oui.")], "valid": [], "test": []}, d)
        ...     json.loads(manifest.read_text())["train"]["pairs"]
        1
    """
    if not isinstance(splits, dict) or set(splits) != set(SPLITS):
        got = sorted(splits) if isinstance(splits, dict) else type(splits).__name__
        raise ValueError(f"splits must be a dict with keys {list(SPLITS)} (from split_pairs); got {got}")
    directory = Path(directory)
    manifest = {}
    for name in SPLITS:
        path = write_pairs_tsv(splits[name], directory / f"{name}.tsv")
        manifest[name] = {"file": path.name, "pairs": len(splits[name]), "bytes": path.stat().st_size,
                          "sha256": sha256_file(path)}
    out = directory / MANIFEST
    out.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def load_splits(directory: str | Path = DERIVED_DIR) -> dict[str, list[Pair]]:
    """Read the splits :func:`write_splits` wrote, checking each file's SHA-256 and size first.

    Raises:
        FileNotFoundError: the manifest or a split file is missing (the message says how to build it).
        ValueError: a file's checksum or number of pairs differs from the manifest.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = write_splits(split_pairs([("Yes.", "Oui."), ("No.", "Non.")], valid=0.0, test=0.5), d)
        ...     {name: len(part) for name, part in load_splits(d).items()}
        {'train': 1, 'valid': 0, 'test': 1}
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    hint = "build it with `python -m transformer_lib.catalogs` (set-up step)"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} is missing: {hint}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{manifest_path} is not valid JSON ({err}): {hint}") from None
    splits = {}
    for name in SPLITS:
        if name not in manifest:
            raise ValueError(f"{manifest_path} has no entry for split {name!r}: {hint}")
        entry = manifest[name]
        path = directory / entry["file"]
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (listed in {manifest_path}): {hint}")
        verify_sha256(path, entry["sha256"])
        splits[name] = read_pairs_tsv(path)
        if len(splits[name]) != entry["pairs"]:
            raise ValueError(f"{path} has {len(splits[name])} pairs; {manifest_path} expected {entry['pairs']}")
    return splits


def vocabulary(pairs) -> tuple[set[str], set[str]]:
    """The English and French word types (lower-cased, punctuation split off) of ``pairs``."""
    def words(text):
        return text.lower().replace("'", "' ").replace(",", " ").replace(".", " ").replace("?", " ").split()
    return {w for en, _ in pairs for w in words(en)}, {w for _, fr in pairs for w in words(fr)}
