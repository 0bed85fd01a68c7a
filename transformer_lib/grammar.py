"""French and English morphology for the generated corpus: what makes word-by-word translation fail.

Each function renders one grammatical fact in both languages at once, so that every generated pair
is a correct translation by construction:

* nouns and their plurals (``cheval -> chevaux``), articles that agree (``le/la/les``, ``un/une/des``),
  possessives (``ma voiture``, ``mon école``), demonstratives (``ce``, ``cet``, ``cette``, ``ces``);
* adjectives that agree (``petit/petite/petits/petites``) and move (``the red car -> la voiture rouge``,
  ``the small car -> la petite voiture``), with ``bel/vieil/nouvel`` before a vowel;
* numbers as words (the ``num2words`` package: ``soixante et onze``, ``quatre-vingts``, ``vingt et une``),
  clock times (``à trois heures et demie``, ``à midi moins le quart``) and dates (``le premier mai``);
* elision and contraction, applied last to the French words (:func:`finish_fr`):
  ``je ai -> j'ai``, ``le arbre -> l'arbre``, ``de le -> du``, ``à les -> aux``.

Example:
    >>> lex = load_lexicon()
    >>> car, red, small = lex.noun("car"), lex.adjective("red"), lex.adjective("small")
    >>> en, fr = noun_phrase(car, "def", plural=False, adjectives=[small, red])
    >>> " ".join(en), finish_fr(fr)
    ('the small red car', 'La petite voiture rouge')
    >>> number_fr(71, "f"), time_fr(11, 45)
    ('soixante et onze', 'midi moins le quart')
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from num2words import num2words

from . import lexicon as _lex

__all__ = ["Adjective", "Lexicon", "Noun", "Verb", "date_en", "date_fr", "finish_en", "finish_fr",
           "load_lexicon", "noun_phrase", "number_en", "number_fr", "time_en", "time_fr"]

VOWELS = tuple("aeiouyàâäéèêëîïôöûùüœh")
MONTHS = [("January", "janvier"), ("February", "février"), ("March", "mars"), ("April", "avril"), ("May", "mai"),
          ("June", "juin"), ("July", "juillet"), ("August", "août"), ("September", "septembre"),
          ("October", "octobre"), ("November", "novembre"), ("December", "décembre")]


@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    fr: str
    fr_pl: str
    gender: str  # "m" or "f"
    kind: str  # the class in lexicon.NOUNS: P A F M V R O L


@dataclass(frozen=True)
class Adjective:
    en: str
    forms: tuple[str, str, str, str]  # m, f, m plural, f plural
    before: bool  # placed before the noun in French
    classes: str

    def fr(self, gender: str, plural: bool, next_word: str = "") -> str:
        """The form that agrees; ``beau/vieux/nouveau`` become ``bel/vieil/nouvel`` before a vowel."""
        if gender == "m" and not plural and self.before and _starts_with_vowel(next_word):
            return {"beau": "bel", "vieux": "vieil", "nouveau": "nouvel"}.get(self.forms[0], self.forms[0])
        return self.forms[(2 if plural else 0) + (gender == "f")]


@dataclass(frozen=True)
class Verb:
    en: str  # base form, "_" joins a particle: "look_for"
    en_3sg: str
    en_past: str
    fr: str  # infinitive, "se_" for a reflexive verb
    arg: str  # the noun classes it takes as object, or the preposition of a verb of motion


def _starts_with_vowel(word: str) -> bool:
    return bool(word) and word.lower().startswith(VOWELS) and word.lower() not in _lex.FR_H_ASPIRE


def _en_plural(word: str) -> str:
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + ("es" if re.search(r"(s|sh|ch|x|z)$", word) else "s")


def _fr_plural(word: str) -> str:
    if word.endswith(("s", "x", "z")):
        return word
    if word.endswith("al"):
        return word[:-2] + "aux"
    return word + ("x" if word.endswith(("eau", "eu")) else "s")


def _adjective_forms(spec: str) -> tuple[str, str, str, str]:
    parts = spec.split("/")
    m = parts[0]
    f = parts[1] if len(parts) > 1 else (m if m.endswith("e") else m + "e")
    m_pl = parts[2] if len(parts) > 2 else _fr_plural(m)
    f_pl = parts[3] if len(parts) > 3 else _fr_plural(f)
    return m, f, m_pl, f_pl


def _items(block: str) -> list[list[str]]:
    return [item.split() for item in re.split(r"[;\n]", block) if item.strip()]


class Lexicon:
    """Every word of :mod:`transformer_lib.lexicon`, parsed; build it with :func:`load_lexicon` (cached)."""

    def __init__(self) -> None:
        self.nouns: dict[str, list[Noun]] = {}
        for kind, block in _lex.NOUNS.items():
            for en, fr, gender in _items(block):
                en, _, en_pl = en.partition("/")
                fr, _, fr_pl = fr.partition("/")
                noun = Noun(en.replace("_", " "), (en_pl or _en_plural(en)).replace("_", " "), fr.replace("_", " "),
                            (fr_pl or _fr_plural(fr)).replace("_", " "), gender, kind)
                self.nouns.setdefault(kind, []).append(noun)
        self.adjectives = [Adjective(en, _adjective_forms(fr), pos == "B", classes)
                           for en, fr, pos, classes in _items(_lex.ADJECTIVES)]
        self.transitive = [Verb(*item) for item in _items(_lex.TRANSITIVE)]
        self.intransitive = [Verb(*item, "") for item in _items(_lex.INTRANSITIVE)]
        self.motion = [Verb(*item) for item in _items(_lex.MOTION)]
        self.ditransitive = [Verb(*item) for item in _items(_lex.DITRANSITIVE)]
        self.names = [tuple(item) for item in _items(_lex.NAMES)]
        self.cities = [tuple(item) for item in _items(_lex.CITIES)]

    def noun(self, en: str) -> Noun:
        found = [n for nouns in self.nouns.values() for n in nouns if n.en == en]
        if not found:
            raise KeyError(f"no noun {en!r} in the lexicon (transformer_lib.lexicon.NOUNS)")
        return found[0]

    def adjective(self, en: str) -> Adjective:
        found = [a for a in self.adjectives if a.en == en]
        if not found:
            raise KeyError(f"no adjective {en!r} in the lexicon (transformer_lib.lexicon.ADJECTIVES)")
        return found[0]


@functools.cache
def load_lexicon() -> Lexicon:
    """The parsed lexicon (built once)."""
    return Lexicon()


# -- noun phrases -------------------------------------------------------------------------------------

POSSESSIVES = {"my": ("mon", "ma", "mes"), "your": ("votre", "votre", "vos"), "his": ("son", "sa", "ses"),
               "her": ("son", "sa", "ses"), "our": ("notre", "notre", "nos"), "their": ("leur", "leur", "leurs")}


def noun_phrase(noun: Noun, det: str, *, plural: bool, adjectives=(), count: int | None = None,
                negative: bool = False) -> tuple[list[str], list[str]]:
    """English and French words of a noun phrase; French elision and contraction come later (:func:`finish_fr`).

    ``det``: ``def`` (the), ``indef`` (a / bare plural), ``dem`` (this, these), ``part`` (bare mass noun:
    ``bread -> du pain``), ``num`` (``count`` of them), or a possessive (``my`` ... ``their``).
    ``negative``: the phrase is the object of a negated verb, so ``un/une/des/du`` become ``de``.
    """
    before = [a for a in adjectives if a.before]
    after = [a for a in adjectives if not a.before]
    g = noun.gender
    head_fr = (noun.fr_pl if plural else noun.fr).split()
    fr_after = [a.fr(g, plural) for a in after]
    fr_before: list[str] = []
    for i, a in enumerate(before):  # each agrees; the last one sees the noun's first letter
        nxt = before[i + 1].forms[0] if i + 1 < len(before) else head_fr[0]
        fr_before.append(a.fr(g, plural, nxt))
    first = (fr_before or head_fr)[0]
    if det == "def":
        fr_det, en_det = ["les" if plural else ("la" if g == "f" else "le")], ["the"]
    elif det in ("indef", "part"):
        if negative:
            fr_det = ["de"]
        elif det == "part":
            fr_det = ["de", "la" if g == "f" else "le"]
        elif plural:
            fr_det = ["de" if fr_before else "des"]  # "de petites voitures"
        else:
            fr_det = ["une" if g == "f" else "un"]
        en_det = [] if (plural or det == "part") else ["a"]
    elif det == "dem":
        fr_det = ["ces" if plural else ("cette" if g == "f" else ("cet" if _starts_with_vowel(first) else "ce"))]
        en_det = ["these" if plural else "this"]
    elif det == "num":
        fr_det, en_det = [number_fr(count, g)], [number_en(count)]
    elif det in POSSESSIVES:
        m, f, pl = POSSESSIVES[det]
        fr_det = [pl if plural else (m if g == "m" or _starts_with_vowel(first) else f)]  # "mon école"
        en_det = [det]
    else:
        raise ValueError(f"det must be def, indef, part, dem, num or a possessive; got {det!r}")
    en_adjs = [a.en for a in before] + [a.en for a in after]
    en_head = (noun.en_pl if plural else noun.en).split()
    if en_det == ["a"] and (en_adjs or en_head)[0][0] in "aeio" and not (en_adjs or en_head)[0].startswith("uni"):
        en_det = ["an"]
    if after and len(after) == 2:
        fr_after = [fr_after[0], "et", fr_after[1]]
    return en_det + en_adjs + en_head, fr_det + fr_before + head_fr + fr_after


# -- numbers, times, dates -----------------------------------------------------------------------------

def _check_int(value: int, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}]; got {value!r}")
    return value


def number_en(n: int) -> str:
    """English: words up to twelve, digits beyond (``three``, ``71``)."""
    _check_int(n, "n", 0, 10**6)
    return num2words(n, lang="en") if n <= 12 else str(n)


def number_fr(n: int, gender: str = "m") -> str:
    """French number words (``num2words``), ``un -> une`` before a feminine noun (``vingt et une``)."""
    words = num2words(_check_int(n, "n", 0, 10**6), lang="fr")
    return re.sub(r"\bun$", "une", words) if gender == "f" else words


def time_en(hour: int, minute: int) -> str:
    _check_int(hour, "hour", 0, 12)
    _check_int(minute, "minute", 0, 59)
    return "noon" if (hour, minute) == (12, 0) else ("midnight" if (hour, minute) == (0, 0) else f"{hour}:{minute:02d}")


def time_fr(hour: int, minute: int) -> str:
    """French clock time from ``hour`` 1..12 and ``minute`` (a multiple of 5): quarters, halves, ``moins``."""
    def hours(h: int) -> str:
        return "midi" if h == 12 else ("une heure" if h == 1 else f"{number_fr(h, 'f')} heures")
    _check_int(hour, "hour", 1, 12)
    _check_int(minute, "minute", 0, 59)
    if minute == 0:
        return hours(hour)
    if minute <= 30:
        return hours(hour) + {15: " et quart", 30: " et demie"}.get(minute, " " + number_fr(minute))
    nxt = hour % 12 + 1
    return hours(nxt) + (" moins le quart" if minute == 45 else " moins " + number_fr(60 - minute))


def date_en(day: int, month: int) -> str:
    _check_int(day, "day", 1, 31)
    _check_int(month, "month", 1, 12)
    return f"{MONTHS[month - 1][0]} {day}"


def date_fr(day: int, month: int) -> str:
    _check_int(day, "day", 1, 31)
    _check_int(month, "month", 1, 12)
    return ("premier" if day == 1 else number_fr(day)) + " " + MONTHS[month - 1][1]


# -- the last touches ----------------------------------------------------------------------------------

ELIDE = {"je", "me", "te", "se", "le", "la", "ne", "de", "que"}
CONTRACT = {("de", "le"): "du", ("de", "les"): "des", ("à", "le"): "au", ("à", "les"): "aux"}


def finish_fr(words: list[str]) -> str:
    """Elide (``je ai -> j'ai``), contract (``à le -> au``), space the punctuation the French way, capitalise."""
    words = " ".join(words).replace("de des ", "de ").split()  # "venir de + des hôtels" -> "venir d'hôtels"
    out: list[str] = []
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if out and out[-1].endswith("'"):
            out[-1] += word
        elif word in ELIDE and _starts_with_vowel(nxt) or (word == "ce" and nxt == "est"):
            out.append(word[:-1] + "'")
        elif out and (out[-1], word) in CONTRACT:
            out[-1] = CONTRACT[out[-1], word]
        else:
            out.append(word)
    text = " ".join(out).replace(" .", ".").replace(" ,", ",")
    text = re.sub(r"([?!] )(\w)", lambda m: m.group(1) + m.group(2).upper(), text)  # "... ? Je la vois."
    return text[:1].upper() + text[1:]


def finish_en(words: list[str]) -> str:
    """Join English words, attach punctuation, capitalise."""
    text = " ".join(" ".join(words).replace("_", " ").split())
    for mark in ".,?!":
        text = text.replace(" " + mark, mark)
    text = re.sub(r"([?!] )(\w)", lambda m: m.group(1) + m.group(2).upper(), text)
    return text[:1].upper() + text[1:]
