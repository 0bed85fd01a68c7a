"""Tests of transformer_lib.data (pair files, checksums, splits) and transformer_lib.catalogs (gettext pairs).

Offline and fast: every catalog and pair file here is a small fixture under tests/fixtures/data/,
written for the course, or built in tmp_path. Nothing is downloaded (download() is tested with file:// URLs).
"""

import json
import urllib.request
from pathlib import Path

import polib
import pytest

from transformer_lib.catalogs import (
    build_catalog_corpus,
    catalog_pairs,
    harvest_pairs,
    is_clean_pair,
    package_catalogs,
    read_catalog,
    system_catalogs,
)
from transformer_lib.data import (
    download,
    load_splits,
    read_pairs_tsv,
    sha256_file,
    split_pairs,
    verify_sha256,
    write_pairs_tsv,
    write_splits,
)

FIXTURES = Path(__file__).parent / "fixtures" / "data"
PO = FIXTURES / "sample_fr.po"
TSV = FIXTURES / "eng_fra_sample.tsv"
KEPT = [("Open the file", "Ouvrir le fichier"), ("Do you want to quit?", "Voulez-vous quitter ?"),
        ("Open the file", "Ouvrir le fichier"), ("Open the file", "Ouvre le fichier")]


# -- catalogs: what is a clean pair -------------------------------------------------------------------


@pytest.mark.parametrize("src, tgt", [
    ("Delete %s?", "Supprimer %s ?"), ("%d files", "%d fichiers"), ("Copied %(n)d files", "%(n)d copiés"),
    ("Show %.*s here", "Montrer %.*s ici"), ("Hello {name} there", "Bonjour {name} toi"),
    ("Path is $HOME now", "Chemin est $HOME"), ("<b>Bold</b> text", "texte <b>gras</b>"),
    ("Tom &amp; Jerry", "Tom &amp; Jerry !"), ("_Open the file", "_Ouvrir le fichier"),
    ("&Open the file", "&Ouvrir le fichier"), ("~Open the file", "~Ouvrir le fichier"),
    ("use --all here", "utiliser --all ici"), ("line one\nline two", "ligne un\nligne deux"),
    ("See https://example.org now", "Voir https://example.org"), ("# Not a target:", "# Pas une cible :"),
    ("Bad CRC value", "bad crc value"), ("Quit", "Quitter"), ("Open the file", "Ouvrir"),
    ("12 34", "12 34 56"),
])
def test_is_clean_pair_rejects(src, tgt):
    assert not is_clean_pair(src, tgt)


def test_is_clean_pair_accepts_and_word_limits():
    assert is_clean_pair("Save the document", "Enregistrer le document")
    assert is_clean_pair("50 % of the disk is used", "50 % du disque est utilisé")  # a lone % is no placeholder
    long = " ".join(["word"] * 31)
    assert not is_clean_pair(long, "mot " * 5)
    assert is_clean_pair(long, "un long texte", max_words=31)
    assert not is_clean_pair("Save the document", "Enregistrer le document", min_words=4)
    with pytest.raises(TypeError, match="src and tgt must be str"):
        is_clean_pair("Save it", None)


def test_catalog_pairs_of_the_fixture_po_keeps_only_the_clean_entries():
    assert catalog_pairs(polib.pofile(str(PO))) == KEPT  # fuzzy, plural, obsolete, untranslated... all dropped
    assert read_catalog(PO) == KEPT


def test_read_catalog_mo_gives_the_same_pairs_as_po(tmp_path):
    polib.pofile(str(PO)).save_as_mofile(str(tmp_path / "sample.mo"))
    assert sorted(read_catalog(tmp_path / "sample.mo")) == sorted(KEPT)  # .mo drops fuzzy/obsolete itself


def test_read_catalog_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="catalog .*nothing.mo does not exist"):
        read_catalog(tmp_path / "nothing.mo")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt must end in .po or .mo; got '.txt'"):
        read_catalog(tmp_path / "notes.txt")
    (tmp_path / "broken.mo").write_bytes(b"this is not a mo file at all")
    with pytest.raises(ValueError, match="catalog .*broken.mo is not a valid gettext .mo file"):
        read_catalog(tmp_path / "broken.mo")


def test_harvest_pairs_deduplicates_and_does_not_depend_on_path_order(tmp_path):
    other = tmp_path / "other.po"
    other.write_text('msgid "Open the file"\nmsgstr "Ouvrir le fichier"\n\n'
                     'msgid "Close the door"\nmsgstr "Fermer la porte"\n', encoding="utf-8")
    pairs = harvest_pairs([PO, other])
    assert pairs == sorted(set(KEPT) | {("Close the door", "Fermer la porte")})
    assert harvest_pairs([other, PO]) == pairs
    with pytest.raises(TypeError, match="paths must be a list"):
        harvest_pairs(str(PO))


def test_system_catalogs_finds_french_folders_only(tmp_path):
    for lang, name in [("fr", "coreutils.mo"), ("fr_CA", "tar.mo"), ("fr", "iso_639_3.mo"),
                       ("frp", "gtk.mo"), ("de", "coreutils.mo"), ("fr", "notes.txt")]:
        (tmp_path / lang / "LC_MESSAGES").mkdir(parents=True, exist_ok=True)
        (tmp_path / lang / "LC_MESSAGES" / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in system_catalogs(tmp_path)]
    assert found == ["fr/LC_MESSAGES/coreutils.mo", "fr_CA/LC_MESSAGES/tar.mo"]  # iso_ name lists left out
    assert len(system_catalogs(tmp_path, exclude=())) == 3
    assert system_catalogs(tmp_path / "missing") == []


def test_package_catalogs_finds_french_catalogs_in_site_packages(tmp_path):
    site = tmp_path / "site-packages"
    for rel in ["pkg/locale/fr/LC_MESSAGES/pkg.mo", "pkg/locale/fr/LC_MESSAGES/pkg.po",
                "lab/locale/fr_FR/LC_MESSAGES/lab.mo", "other/locale/de/LC_MESSAGES/x.mo",
                "docs/po/fr.po", "docs/po/de.po"]:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(b"")
    found = [p.relative_to(site).as_posix() for p in package_catalogs([site, tmp_path / "elsewhere"])]
    assert found == ["docs/po/fr.po", "lab/locale/fr_FR/LC_MESSAGES/lab.mo", "pkg/locale/fr/LC_MESSAGES/pkg.po"]


def test_build_catalog_corpus_writes_checked_splits(tmp_path):
    manifest = build_catalog_corpus(tmp_path / "out", [PO], seed=1, valid=0.0, test=0.5)
    splits = load_splits(manifest.parent)
    assert sorted(p for part in splits.values() for p in part) == sorted(set(KEPT))
    empty = tmp_path / "empty.po"
    empty.write_text('msgid "Quit"\nmsgstr "Quitter"\n', encoding="utf-8")  # one word: nothing clean
    with pytest.raises(ValueError, match="no clean English-French pair found in 1 catalogs"):
        build_catalog_corpus(tmp_path / "none", [empty])


# -- data: the tab-separated pair format -----------------------------------------------------------------


def test_read_pairs_tsv_reads_the_tatoeba_format():
    pairs = read_pairs_tsv(TSV)  # BOM, blank line, 2 or 3 columns
    assert len(pairs) == 7 and pairs[0] == ("Go.", "Va !") and ("I am cold.", "J'ai froid.") in pairs
    assert read_pairs_tsv(TSV, max_pairs=2) == pairs[:2]
    with pytest.raises(ValueError, match="max_pairs must be None or an int >= 0"):
        read_pairs_tsv(TSV, max_pairs=-1)


def test_read_pairs_tsv_errors_name_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="pair file .*absent.tsv does not exist"):
        read_pairs_tsv(tmp_path / "absent.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("Go.\tVa !\nno tab on this line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv, line 2: expected english<TAB>french"):
        read_pairs_tsv(bad)


def test_write_pairs_tsv_round_trip_and_bad_pairs(tmp_path):
    pairs = read_pairs_tsv(TSV)
    assert read_pairs_tsv(write_pairs_tsv(pairs, tmp_path / "sub" / "copy.tsv")) == pairs
    with pytest.raises(ValueError, match=r"pairs\[0\] must have two non-empty sides without tabs"):
        write_pairs_tsv([("a\tb", "c")], tmp_path / "x.tsv")
    with pytest.raises(TypeError, match=r"pairs\[1\] must be a \(english, french\) pair of str"):
        write_pairs_tsv([("a", "b"), ("only one",)], tmp_path / "x.tsv")


# -- data: checksums and download ------------------------------------------------------------------------


def test_verify_sha256_names_file_expected_and_actual(tmp_path):
    actual = sha256_file(TSV)
    assert verify_sha256(TSV, actual.upper()) == TSV
    wrong = "0" * 64
    with pytest.raises(ValueError, match=f"eng_fra_sample.tsv is corrupted .*expected {wrong}, got {actual}"):
        verify_sha256(TSV, wrong)
    with pytest.raises(FileNotFoundError, match="gone.tsv is missing"):
        verify_sha256(tmp_path / "gone.tsv", wrong)
    with pytest.raises(ValueError, match="sha256 must be 64 hex digits"):
        verify_sha256(TSV, "abc")


def test_download_from_a_file_url_checks_the_sha256(tmp_path):
    sha = sha256_file(TSV)
    got = download(TSV.as_uri(), tmp_path / "fra.txt", sha)
    assert sha256_file(got) == sha and read_pairs_tsv(got) == read_pairs_tsv(TSV)
    with pytest.raises(ValueError, match=f"download of .* failed its check: .*expected {'1' * 64}, got {sha}"):
        download(TSV.as_uri(), tmp_path / "bad.txt", "1" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fra.txt"]  # nothing left behind


def test_download_skips_a_file_that_is_already_there(tmp_path, monkeypatch):
    target = write_pairs_tsv([("Hi.", "Salut.")], tmp_path / "fra.txt")

    def no_network(*args, **kwargs):
        raise AssertionError("download() must not fetch a file that is already there")

    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)
    assert download("https://example.invalid/fra.zip", target, sha256_file(target)) == target


# -- data: splits and manifest ------------------------------------------------------------------------------


def _corpus(n=200):
    pairs = [(f"Sentence number {i}.", f"Phrase numéro {i}.") for i in range(n)]
    pairs += [(f"Sentence number {i}.", f"Autre phrase {i}.") for i in range(0, n, 3)]  # second translations
    return pairs + pairs[:10]  # and exact duplicates


def test_split_pairs_no_source_in_two_splits_and_duplicates_together():
    splits = split_pairs(_corpus(), valid=0.1, test=0.2, seed=0)
    sources = {name: {s for s, _ in part} for name, part in splits.items()}
    assert not sources["train"] & sources["valid"] and not sources["train"] & sources["test"]
    assert not sources["valid"] & sources["test"]
    assert [len(sources[n]) for n in ("train", "valid", "test")] == [140, 20, 40]  # by unique source
    every = [p for part in splits.values() for p in part]
    assert len(every) == len(set(every)) == len(set(_corpus()))  # exact duplicates kept once, nothing lost


def test_split_pairs_is_deterministic_from_the_seed():
    assert split_pairs(_corpus(), seed=3) == split_pairs(list(_corpus()), seed=3)
    assert split_pairs(_corpus(), seed=3) != split_pairs(_corpus(), seed=4)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"valid": 1.0}, ValueError, r"valid must be a fraction in \[0, 1\)"),
    ({"test": -0.1}, ValueError, r"test must be a fraction in \[0, 1\)"),
    ({"valid": 0.5, "test": 0.5}, ValueError, "valid \\+ test must be < 1"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
])
def test_split_pairs_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        split_pairs(_corpus(), **kwargs)


def test_write_splits_manifest_and_load_splits_round_trip(tmp_path):
    splits = split_pairs(_corpus(), seed=0)
    manifest_path = write_splits(splits, tmp_path)
    manifest = json.loads(manifest_path.read_text())
    for name, part in splits.items():
        entry = manifest[name]
        assert entry["pairs"] == len(part) and entry["sha256"] == sha256_file(tmp_path / f"{name}.tsv")
        assert entry["bytes"] == (tmp_path / entry["file"]).stat().st_size
    assert load_splits(tmp_path) == splits


def test_load_splits_detects_corrupted_and_missing_files(tmp_path):
    write_splits(split_pairs(_corpus(), seed=0), tmp_path)
    expected = json.loads((tmp_path / "manifest.json").read_text())["valid"]["sha256"]
    with (tmp_path / "valid.tsv").open("a", encoding="utf-8") as f:
        f.write("Extra line.\tLigne en plus.\n")
    actual = sha256_file(tmp_path / "valid.tsv")
    with pytest.raises(ValueError, match=f"valid.tsv is corrupted .*expected {expected}, got {actual}"):
        load_splits(tmp_path)
    (tmp_path / "valid.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="valid.tsv is missing .*python -m transformer_lib.catalogs"):
        load_splits(tmp_path)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        load_splits(tmp_path)
    with pytest.raises(ValueError, match=r"splits must be a dict with keys \['train', 'valid', 'test'\]"):
        write_splits({"train": []}, tmp_path)


def test_load_splits_detects_a_bad_manifest(tmp_path):
    write_splits(split_pairs(_corpus(), seed=0), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["test"]["pairs"] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"test.tsv has \d+ pairs; .*manifest.json expected \d+"):
        load_splits(tmp_path)
    del manifest["test"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="manifest.json has no entry for split 'test'"):
        load_splits(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json is not valid JSON"):
        load_splits(tmp_path)


def test_harvest_skips_a_broken_catalog_with_a_warning(tmp_path):
    from transformer_lib.catalogs import harvest_pairs
    broken = tmp_path / "broken.mo"
    broken.write_bytes(b"not a catalog")
    with pytest.warns(UserWarning, match="skipped .*broken.mo"):
        assert harvest_pairs([broken]) == []
