"""Human English->French translations found offline, in gettext message catalogs (``.po``/``.mo``).

Free software ships its user-interface messages translated by people: each catalog entry pairs an
English ``msgid`` with a French ``msgstr``. No package ships an English-French sentence corpus, but
these catalogs are on every machine (``/usr/share/locale/fr/LC_MESSAGES/*.mo``; French catalogs
inside pip packages). :func:`harvest_pairs` reads them with ``polib`` and keeps the pairs a model can
learn from: no placeholders (``%s``, ``{name}``), no markup (``<b>``, ``&amp;``), no keyboard
accelerators (``_File``, ``&File``), no plural or fuzzy entries, between ``min_words`` and ``max_words``.

The pairs are built on the student's machine at set-up time, ``python -m transformer_lib.catalogs``
(:func:`build_catalog_corpus`, split and checksummed by :mod:`transformer_lib.data`); they are never
committed: each catalog keeps the licence of the package it comes from.

Example:
    >>> import polib
    >>> po = polib.pofile('msgid "Open the file"\\nmsgstr "Ouvrir le fichier"\\n')
    >>> catalog_pairs(po)
    [('Open the file', 'Ouvrir le fichier')]
"""

from __future__ import annotations

import json
import re
import site
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import polib

from .data import DERIVED_DIR, split_pairs, write_splits

__all__ = ["is_clean_pair", "catalog_pairs", "read_catalog", "harvest_pairs",
           "system_catalogs", "package_catalogs", "default_catalogs", "build_catalog_corpus"]

Pair = tuple[str, str]

# What a sentence must not contain. Each pattern is one reason to drop a message.
_REJECT = {
    "printf placeholder": re.compile(r"%(?!\s|$)"),  # %s, %d, %.*s, %(name)s, %1$s, %% (a lone "50 %" stays)
    "brace placeholder": re.compile(r"[{}]"),
    "shell placeholder": re.compile(r"\$\{?\w"),
    "markup": re.compile(r"<[^>]*>|&#?\w+;"),
    "accelerator": re.compile(r"(^|[\s(])[_&~]\w|\w_\w"),  # _File, &File, ~File, also snake_case names
    "command-line option": re.compile(r"(^|\s)--?\w"),
    "control character": re.compile(r"[\n\t\r\\\x00-\x1f]"),
    "code symbol": re.compile(r"[#|=*^\[\]`]"),
    "web address": re.compile(r"https?:|www\.|@\w+\.", re.IGNORECASE),
}
NAME_LISTS = ("iso_",)  # iso-codes: lists of names (languages, countries, currencies), not sentences
_LETTER = re.compile(r"[^\W\d_]")


def _words(text: str) -> int:
    return len(text.split())


def is_clean_pair(src: str, tgt: str, *, min_words: int = 2, max_words: int = 30) -> bool:
    """Whether ``(src, tgt)`` is a plain sentence pair worth training on.

    Both sides must be free of placeholders, markup, accelerators, command-line options, control
    characters, code symbols and web addresses, contain a letter, and have ``min_words`` to
    ``max_words`` words; a pair whose two sides are identical (ignoring case) is not a translation.

    Args:
        src, tgt: the English message and its French translation.
        min_words, max_words: the word-count range (whitespace-separated words) each side must fall in.

    Returns:
        ``True`` if the pair is kept.

    Example:
        >>> is_clean_pair("Save the document", "Enregistrer le document")
        True
        >>> [is_clean_pair(s, t) for s, t in [("Delete %s?", "Supprimer %s ?"), ("_Open file", "_Ouvrir"),
        ...  ("<b>Bold</b> text", "<b>Gras</b>"), ("Bad CRC value", "bad crc value"), ("Quit", "Quitter")]]
        [False, False, False, False, False]
    """
    for text in (src, tgt):
        if not isinstance(text, str):
            raise TypeError(f"src and tgt must be str; got {type(text).__name__}")
        if not min_words <= _words(text) <= max_words or not _LETTER.search(text):
            return False
        if any(pattern.search(text) for pattern in _REJECT.values()):
            return False
    return src.casefold() != tgt.casefold()


def _normalize(text: str) -> str:
    return " ".join(text.split())


def catalog_pairs(catalog: polib.POFile | polib.MOFile, *, min_words: int = 2,
                  max_words: int = 30) -> list[Pair]:
    """The clean ``(english, french)`` pairs of one parsed catalog (``polib.pofile``/``polib.mofile``).

    Drops the header, obsolete, fuzzy, untranslated, plural and multi-line entries, then every pair
    that :func:`is_clean_pair` rejects. Spaces are normalised (French non-breaking spaces become plain
    ones). Duplicates are kept (:func:`harvest_pairs` removes them).

    Example:
        >>> import polib
        >>> po = polib.pofile('msgid "Print the page"\\nmsgstr "Imprimer la page"\\n\\n'
        ...                   '#, fuzzy\\nmsgid "Close the window"\\nmsgstr "Fermer"\\n')
        >>> catalog_pairs(po)
        [('Print the page', 'Imprimer la page')]
    """
    if not isinstance(catalog, (polib.POFile, polib.MOFile)):
        raise TypeError(f"catalog must be a parsed catalog (polib.pofile(...) or polib.mofile(...)); got "
                        f"{type(catalog).__name__} (for a path use read_catalog)")
    pairs = []
    for entry in catalog:
        if (not entry.msgid or not entry.msgstr or entry.msgid_plural or entry.obsolete
                or "fuzzy" in entry.flags or any(c in entry.msgid + entry.msgstr for c in "\n\t")):
            continue  # multi-line messages are help texts and tables, not sentences
        src, tgt = _normalize(entry.msgid), _normalize(entry.msgstr)
        if is_clean_pair(src, tgt, min_words=min_words, max_words=max_words):
            pairs.append((src, tgt))
    return pairs


def read_catalog(path: str | Path, *, min_words: int = 2, max_words: int = 30) -> list[Pair]:
    """Read one ``.po`` or ``.mo`` file and return its clean pairs (see :func:`catalog_pairs`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a ``.po``/``.mo`` file, or polib cannot parse it (the message names it).

    Example:
        >>> read_catalog("missing.mo")
        Traceback (most recent call last):
        ...
        FileNotFoundError: catalog missing.mo does not exist (expected a gettext .po or .mo file)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalog {path} does not exist (expected a gettext .po or .mo file)")
    suffix = path.suffix.lower()
    if suffix not in (".po", ".mo"):
        raise ValueError(f"catalog {path} must end in .po or .mo; got {suffix or 'no suffix'!r}")
    try:
        catalog = polib.mofile(str(path)) if suffix == ".mo" else polib.pofile(str(path))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"catalog {path} is not a valid gettext {suffix} file: {err}") from err
    return catalog_pairs(catalog, min_words=min_words, max_words=max_words)


def harvest_pairs(paths: Iterable[str | Path], *, min_words: int = 2, max_words: int = 30) -> list[Pair]:
    """Clean pairs from many catalogs: deduplicated and sorted, so the result never depends on the order
    of ``paths`` nor on the machine's file-system order. A catalog that cannot be read is skipped with a warning.

    Example:
        >>> harvest_pairs([])
        []
    """
    if isinstance(paths, (str, Path)):
        raise TypeError("paths must be a list of catalog paths, not one path; use harvest_pairs([path])")
    found: set[Pair] = set()
    for path in paths:
        try:
            found.update(read_catalog(path, min_words=min_words, max_words=max_words))
        except ValueError as err:  # one broken catalog on the machine must not stop the harvest
            warnings.warn(f"skipped {path}: {err}", stacklevel=2)
    return sorted(found)


def system_catalogs(locale_dir: str | Path = "/usr/share/locale", *,
                    exclude: Sequence[str] = NAME_LISTS) -> list[Path]:
    """The system's French message catalogs: ``<locale_dir>/fr*/LC_MESSAGES/*.mo`` (``fr``, ``fr_FR``...).

    Catalogs whose name starts with one of ``exclude`` are left out: by default the ``iso-codes``
    lists of language, country and currency names (``iso_639_3.mo``...), which are names, not sentences.
    Returns ``[]`` where the folder does not exist (Windows, macOS, a minimal container).

    Example:
        >>> system_catalogs("/no/such/folder")
        []
    """
    root = Path(locale_dir)
    dirs = [d for d in root.glob("fr*") if d.name == "fr" or d.name.startswith(("fr_", "fr@"))]
    return sorted(p for d in dirs for p in d.glob("LC_MESSAGES/*.mo") if not p.name.startswith(tuple(exclude)))


def package_catalogs(site_dirs: Sequence[str | Path] | None = None) -> list[Path]:
    """French catalogs shipped inside installed Python packages (e.g. ``jupyterlab-language-pack-fr-FR``).

    Looks under each ``site-packages`` folder for ``*/fr*/LC_MESSAGES/*.mo`` and for ``.po`` files
    there, or named ``fr*.po``; a catalog present as both ``.po`` and ``.mo`` is listed once (the ``.po``).

    Args:
        site_dirs: folders to search; ``None`` = this Python's site-packages folders.

    Example:
        >>> package_catalogs(["/no/such/folder"])
        []
    """
    if site_dirs is None:
        site_dirs = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    found: dict[Path, Path] = {}
    for top in dict.fromkeys(Path(d).resolve() for d in site_dirs):
        if not top.is_dir() or top.name not in ("site-packages", "dist-packages"):
            continue
        candidates = [*top.glob("**/fr*/LC_MESSAGES/*.[mp]o"), *top.glob("**/fr*.po")]
        for path in candidates:
            lang = path.stem if path.parent.name != "LC_MESSAGES" else path.parent.parent.name
            if re.split(r"[_@.-]", lang)[0] == "fr":
                key = path.with_suffix("")
                if key not in found or path.suffix == ".po":
                    found[key] = path
    return sorted(found.values())


def default_catalogs() -> dict[str, list[Path]]:
    """The French catalogs this machine has: ``{"system": [...], "packages": [...]}``.

    Example:
        >>> sorted(default_catalogs())
        ['packages', 'system']
    """
    return {"system": system_catalogs(), "packages": package_catalogs()}


def build_catalog_corpus(directory: str | Path = DERIVED_DIR, catalogs: Iterable[str | Path] | None = None, *,
                         seed: int = 0, valid: float = 0.1, test: float = 0.1) -> Path:
    """Set-up step: harvest English->French pairs from gettext catalogs, split them, write the splits.

    Args:
        directory: where ``train.tsv``, ``valid.tsv``, ``test.tsv`` and ``manifest.json`` go.
        catalogs: ``.po``/``.mo`` paths; ``None`` = this machine's (:func:`~transformer_lib.catalogs.default_catalogs`).
        seed, valid, test: as in :func:`split_pairs`.

    Returns:
        The manifest's path.

    Example:
        >>> build_catalog_corpus("unused", catalogs=[])
        Traceback (most recent call last):
        ...
        ValueError: no clean English-French pair found in 0 catalogs (expected .po/.mo files with French translations)
    """
    if catalogs is None:
        catalogs = [path for paths in default_catalogs().values() for path in paths]
    catalogs = list(catalogs)
    pairs = harvest_pairs(catalogs)
    if not pairs:
        raise ValueError(f"no clean English-French pair found in {len(catalogs)} catalogs "
                         "(expected .po/.mo files with French translations)")
    return write_splits(split_pairs(pairs, valid=valid, test=test, seed=seed), directory)


if __name__ == "__main__":  # python -m transformer_lib.catalogs [directory]: the set-up step
    written = build_catalog_corpus(sys.argv[1] if len(sys.argv) > 1 else DERIVED_DIR)
    sizes = {name: entry["pairs"] for name, entry in json.loads(written.read_text()).items()}
    print(f"wrote {written}: {sizes} pairs")
