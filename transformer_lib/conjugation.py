"""Verbs in both languages: French conjugation by rule and table, and the English verb group that matches it.

French: the present, the future and the passé composé of the regular groups by rule (with their
spelling changes: ``mangeons``, ``lançons``, ``achète``, ``appelle``, ``achètera``) and of the others from
:data:`~transformer_lib.lexicon.IRREGULAR`; ``être`` for verbs of motion and reflexive verbs, with the
participle agreeing with the subject (``elle est allée``), and ``avoir`` otherwise, with the participle
agreeing with a direct object placed before it (``je l'ai vue``, ``la voiture qu'elle a achetée``).

:func:`verb_group` renders what follows the subject, in both languages at once: ``do not see`` /
``ne ... pas``, ``will see`` / ``verrai``, ``am going to see`` / ``vais voir``, object pronouns before the
French verb (``I see her`` -> ``je la vois``), adverbs that move (``I often eat`` -> ``je mange souvent``).

Example:
    >>> conjugate("acheter", 2, "past", gender="f"), conjugate("aller", 2, "past", gender="f")
    (['a', 'acheté'], ['est', 'allée'])
    >>> [conjugate("manger", p, "present")[0] for p in (0, 3)], conjugate("appeler", 0, "future")
    (['mange', 'mangeons'], ['appellerai'])
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from . import lexicon as _lex
from .grammar import Verb

__all__ = ["ADVERBS", "MOTION_PREPS", "PRONOUNS", "Subject", "be", "conjugate", "noun_subject", "verb_group"]

@dataclass
class Subject:
    en: list[str]
    fr: list[str]
    person: int  # 0 je, 2 il/elle, 3 nous, 4 vous, 5 ils
    gender: str = "m"

    @property
    def plural(self) -> bool:
        return self.person >= 3


PRONOUNS = [Subject(["I"], ["je"], 0), Subject(["you"], ["vous"], 4), Subject(["he"], ["il"], 2),
            Subject(["she"], ["elle"], 2, "f"), Subject(["we"], ["nous"], 3), Subject(["they"], ["ils"], 5)]
OBJECT_EN = ["me", "you", "him", "her", "us", "them"]  # the same order as PRONOUNS
OBJECT_FR = [("me", "m", False), ("vous", "m", True), ("le", "m", False), ("la", "f", False),
             ("nous", "m", True), ("les", "m", True)]
INDIRECT_FR = ["me", "vous", "lui", "lui", "nous", "leur"]


def noun_subject(en: list[str], fr: list[str], gender: str, plural: bool) -> Subject:
    """A noun phrase as a subject: third person, singular or plural."""
    return Subject(en, fr, 5 if plural else 2, gender)


# -- French conjugation --------------------------------------------------------------------------------------------

@functools.cache
def _irregular() -> dict[str, tuple[list[str], str, str]]:
    table = {}
    for line in _lex.IRREGULAR.strip().splitlines():
        verb, rest = line.strip().split(":")
        present, participle, future = (part.split() for part in rest.split("|"))
        table[verb] = (present, participle[0], future[0])
    return table


FUTURE = ["ai", "as", "a", "ons", "ez", "ont"]
ETRE_VERBS = {"aller", "venir", "arriver", "partir", "retourner", "entrer", "rester", "tomber", "rentrer"}
REGULAR_IR = {"finir", "choisir", "nourrir", "remplir"}


def _present_regular(verb: str, person: int) -> str:
    stem, group = verb[:-2], verb[-2:]
    if group == "ir":
        return stem + ["is", "is", "it", "issons", "issez", "issent"][person]
    if group == "re":
        return stem + ["s", "s", "", "ons", "ez", "ent"][person]
    ending = ["e", "es", "e", "ons", "ez", "ent"][person]
    if person == 3 and stem.endswith("g"):
        stem += "e"  # mangeons
    if person == 3 and stem.endswith("c"):
        stem = stem[:-1] + "ç"  # lançons
    if person not in (3, 4):  # the stem vowel is stressed: achète, appelle, préfère
        stem = _stressed_stem(stem)
    return stem + ending


def _stressed_stem(stem: str) -> str:
    if stem in ("appel", "jet"):
        return stem + stem[-1]
    match = re.search(r"([eé])([^aeiouéèêy])$", stem)  # e + one consonant: achet-, préfér-
    return stem[:match.start()] + "è" + match.group(2) if match else stem


def _participle(verb: str) -> str:
    if verb in _irregular():
        return _irregular()[verb][1]
    return verb[:-2] + {"er": "é", "ir": "i", "re": "u"}[verb[-2:]]


def _future(verb: str, person: int) -> str:
    if verb in _irregular():
        stem = _irregular()[verb][2]
    elif verb.endswith("er"):  # achèterai, appellerai; préférerai keeps its é
        stem = _stressed_stem(verb[:-2]) + "er" if re.search(r"e[^aeiouéèêy]$", verb[:-2]) else verb
    else:
        stem = verb[:-1] if verb.endswith("re") else verb
    return stem + FUTURE[person]


def _agree(participle: str, gender: str, plural: bool) -> str:
    form = participle + ("e" if gender == "f" else "")  # pris -> prise -> prises; pris stays pris
    return form + ("s" if plural and not form.endswith("s") else "")


def conjugate(verb: str, person: int, tense: str, *, gender: str = "m", object_agreement=None) -> list[str]:
    """French words of ``verb`` for a subject of ``person`` (0 je ... 5 ils) in ``tense``.

    ``tense``: ``present``, ``past`` (passé composé), ``future`` or ``imperfect`` (``être`` only).
    With ``être`` the participle agrees with the subject (``elle est allée``); with ``avoir`` it agrees
    with a direct object placed before it, given as ``object_agreement=(gender, plural)``
    (``la voiture qu'elle a achetée``). Reflexive verbs (``se_reposer``) are left to the caller.
    """
    if isinstance(person, bool) or person not in range(6):
        raise ValueError(f"person must be an int 0..5 (0 je, 1 tu, 2 il/elle, 3 nous, 4 vous, 5 ils); got {person!r}")
    plural = person >= 3
    if tense == "present":
        return [_irregular()[verb][0][person] if verb in _irregular() else _present_regular(verb, person)]
    if tense == "future":
        return [_future(verb, person)]
    if tense == "imperfect":
        return [["étais", "étais", "était", "étions", "étiez", "étaient"][person]]
    if tense != "past":
        raise ValueError(f"tense must be present, past, future or imperfect; got {tense!r}")
    if verb in ETRE_VERBS:
        return [_irregular()["être"][0][person], _agree(_participle(verb), gender, plural)]
    participle = _participle(verb)
    if object_agreement is not None:
        participle = _agree(participle, *object_agreement)
    return [_irregular()["avoir"][0][person], participle]


def infinitive(verb: str) -> str:
    return verb.replace("se_", "")


# -- the verb group in both languages -----------------------------------------------------------------

ADVERBS = [("often", "souvent"), ("always", "toujours"), ("never", "jamais")]
# a verb of motion's preposition: lexicon.MOTION's last column -> (english, french)
MOTION_PREPS = {"to": (["to"], ["à"]), "from": (["from"], ["de"]), "at": (["at"], ["à"]),
                "into": (["into"], ["dans"]), "in": ([], ["dans"])}
REFLEXIVE = ["me", "te", "se", "nous", "vous", "se"]
MODALS = {"want": ("vouloir", "want", "wants"), "can": ("pouvoir", "can", "can"), "must": ("devoir", "must", "must")}


def _be_en(person: int, tense: str) -> str:
    if tense == "imperfect":
        return "was" if person in (0, 2) else "were"
    return "am" if person == 0 else ("is" if person == 2 else "are")


def verb_group(verb: Verb, subject, tense: str, negative: bool = False, *, adverb=None, pronoun=None,
               indirect: bool = False, relative=None, ask: bool = False):
    """The words after the subject, up to the object, in English and French.

    Args:
        verb: a :class:`~transformer_lib.grammar.Verb`.
        subject: anything with ``person`` (0 je, 2 il/elle, 3 nous, 4 vous, 5 ils) and ``gender``.
        tense: ``present``, ``past``, ``future``, ``going`` (I am going to ...), ``want``, ``can``, ``must``.
        negative: ``do not`` / ``ne ... pas``.
        adverb: an item of :data:`ADVERBS` (``never`` stands for the negation).
        pronoun: a French object pronoun ``(word, gender, plural)`` placed before the verb; the English
            pronoun is the caller's. With ``avoir`` in the past the participle agrees with it unless
            ``indirect`` (``je lui ai donné``).
        relative: ``(gender, plural)`` of the head of an object relative clause (``que j'ai vue``).
        ask: return the English as ``(auxiliary, rest)`` for a question (``does``, ``see``).

    Returns:
        ``(english words, french words)``; with ``ask``, ``((aux, rest), french words)``.
    """
    if tense not in ("present", "past", "future", "going", *MODALS):
        raise ValueError(f"tense must be present, past, future, going, want, can or must; got {tense!r}")
    person, third = subject.person, subject.person == 2
    base = verb.en.replace("_", " ")
    fr_verb = verb.fr.replace("se_", "")
    pre = [REFLEXIVE[person]] if verb.fr.startswith("se_") else []
    pre += [pronoun[0]] if pronoun else []
    adv_en, adv_fr = adverb if adverb else (None, None)
    never = adv_en == "never"
    neg_fr = ["ne"] if negative or never else []
    after = ["pas"] if negative else ([adv_fr] if adv_fr else [])
    adv = [adv_en] if adv_en else []
    if tense in ("present", "past"):
        finite = verb.en_3sg if third and tense == "present" else verb.en_past if tense == "past" else verb.en
        aux = "did" if tense == "past" else ("does" if third else "do")
        en = ([aux, "not", base] if negative else adv + [finite.replace("_", " ")])
        q = ([aux], [base])
    elif tense == "future":
        en, q = ["will"] + (["not"] if negative else adv) + [base], (["will"], [base])
    elif tense == "going":
        be_word = _be_en(person, "present")
        en, q = [be_word] + (["not"] if negative else []) + ["going", "to", base], ([be_word], ["going", "to", base])
    else:
        fr_modal, en_plain, en_3sg = MODALS[tense]
        if tense == "want":
            do = "does" if third else "do"
            en = [do, "not", "want", "to", base] if negative else [en_3sg if third else en_plain, "to", base]
            q = ([do], ["want", "to", base])
        else:
            en = ([("cannot" if tense == "can" else "must not")] if negative else [en_plain]) + [base]
            q = ([en_plain], [base])
        return (q if ask else en), neg_fr + conjugate(fr_modal, person, "present") + after + pre + [fr_verb]
    if tense == "going":
        return (q if ask else en), neg_fr + conjugate("aller", person, "present") + after + pre + [fr_verb]
    if tense == "past":
        agreement = relative or (pronoun[1:] if pronoun and not indirect else None)
        if verb.fr.startswith("se_"):
            words = [conjugate("être", person, "present")[0], _agree(_participle(fr_verb), subject.gender, person >= 3)]
        else:
            words = conjugate(fr_verb, person, "past", gender=subject.gender, object_agreement=agreement)
        return (q if ask else en), neg_fr + pre + words[:1] + after + words[1:]
    return (q if ask else en), neg_fr + pre + conjugate(fr_verb, person, tense) + after


def be(subject, tense: str, negative: bool = False):
    """``is (not)`` / ``est`` / ``n'est pas``, ``was`` / ``était``, ``will be`` / ``sera``."""
    if tense == "future":
        en = ["will", "not", "be"] if negative else ["will", "be"]
    else:
        en = [_be_en(subject.person, tense)] + (["not"] if negative else [])
    fr = conjugate("être", subject.person, tense)
    return en, (["ne"] + fr + ["pas"] if negative else fr)
