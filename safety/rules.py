"""The fast rule layer: word lists and personal-information patterns, matched on normalized text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import lang
from safety.lexicon import CATEGORIES

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})


def normalize(text: str) -> str:
    """Lower case without accents (ß -> ss, ’ -> '), so lists match typed and transcribed spellings alike."""
    text = text.replace("ß", "ss").replace("’", "'").replace("`", "'").lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def variants(text: str) -> list[str]:
    """The normalized text plus spellings meant to dodge a filter: "k1ll", "kiiill", "s e x"."""
    base = normalize(text)
    out = [base]
    # Digits and symbols inside words ("k1ll", "$hit"), never in plain numbers ("7 dwarfs").
    leet = re.sub(r"[\w@$]*[a-z][\w@$]*", lambda m: m.group(0).translate(_LEET), base)
    out.append(leet)
    # Stretched letters: "kiiiill" -> "kill" and "fuuuck" -> "fuck", "soooo good" stays harmless.
    for s in (base, leet):
        out.append(re.sub(r"(\w)\1{2,}", r"\1", s))
        out.append(re.sub(r"(\w)\1{2,}", r"\1\1", s))
    # Spelled out letter by letter: "s e x", "k.i.l.l"; "a s e x story" also read with "a" left as a word.
    spelled = r"\b(?:\w[ .\-_*]){2,}\w\b"
    out.append(re.sub(spelled, lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), base))
    out.append(re.sub(spelled, lambda m: m.group(0)[:2] + re.sub(r"[ .\-_*]", "", m.group(0)[2:]), base))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Match:
    """One rule that matched: its category, which rule, and where (in the normalized text)."""

    category: str
    rule: str
    start: int
    end: int
    exact: bool = True  # found in the text as written (not only in a re-spelled variant): start/end are usable


@lru_cache(maxsize=None)
def _compiled(language: str) -> list[tuple[str, str, re.Pattern[str]]]:
    rules = []
    for category in CATEGORIES:
        for fragment in lang.get(language).safety_words.get(category, ()):
            rules.append((category, fragment, re.compile(rf"(?<![\w'*-]){fragment}(?![\w*-])")))
    return rules


def _close(a: str, b: str) -> bool:
    """One edit apart (insert, delete, substitute or swap two neighbours), but not equal."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def word_matches(text: str, language: str) -> list[Match]:
    """Every word-list rule that matches any spelling variant of the text."""
    found: dict[tuple[str, str], Match] = {}
    spoken = lang.get(language)
    all_variants = variants(text)
    for variant in all_variants:
        exact = len(variant) == len(all_variants[0])  # plain and leet spellings keep every character in place
        for category, fragment, pattern in _compiled(language):
            m = pattern.search(variant)
            if m and (category, fragment) not in found:
                found[(category, fragment)] = Match(category, fragment, m.start(), m.end(), exact)
        for m in re.finditer(r"[a-z]{5,}", variant):
            if m.group(0) in spoken.real_words_near_fuzzy:
                continue
            for category, words in spoken.safety_fuzzy.items():
                for word in words:
                    if _close(m.group(0), word) and (category, "~" + word) not in found:
                        found[(category, "~" + word)] = Match(category, "~" + word, m.start(), m.end(), exact)
    return sorted(found.values(), key=lambda x: (CATEGORIES.index(x.category), x.start))


# Personal information: each pattern names what it is. Whisper writes spoken numbers as digits,
# but a child may also say them one by one ("five five five ..."), so both are caught.
# The words (digits said one by one, addresses, schools, introductions) are in each language's file (lang/).


@lru_cache(maxsize=None)
def _personal_patterns(language: str) -> list[tuple[str, re.Pattern[str]]]:
    spoken = lang.get(language)
    digits = spoken.digit_words
    # An address said aloud in any language ("emma at mail dot com", "emma arobase mail point fr").
    at, dot = ("|".join(lang.get(code).spoken_at_dot[i] for code in lang.CODES) for i in (0, 1))
    pats = [
        ("email", rf"[\w.+-]+@[\w-]+\.[\w.]+|\b[\w.]+ ({at}) [\w-]+ ({dot}) (com|org|net|fr|de|ch|co|uk)\b"),
        ("phone_digits", r"(?<!\d)\+?\d(?:[\s./()-]*\d){6,}"),
        ("phone", rf"\b(?:(?:{digits})[\s,.-]+){{{spoken.phone_min_words},}}(?:{digits})\b"),
    ]
    # Then the language's own: addresses, school names (looked for only where the child speaks of their
    # own school: a story's "village school" is nobody's personal information), postcodes.
    pats.extend(spoken.personal_patterns)
    return [(kind, re.compile(p)) for kind, p in pats]


def personal_matches(text: str, language: str, spoken_by_child: bool = True) -> list[Match]:
    """Phone numbers and e-mail addresses; in what a child says also addresses, school names and full names.

    A story may count "one, two, three, four, five, six, seven", live at "221 Baker Street" or
    have a fox say "je suis perdu dans la forêt": those patterns are for the child's words only.
    """
    norm = normalize(text)
    kinds = None if spoken_by_child else {"email", "phone_digits"}
    found = [Match("personal_info", kind.removesuffix("_digits"), m.start(), m.end())
             for kind, p in _personal_patterns(language) if kinds is None or kind in kinds for m in p.finditer(norm)]
    if not spoken_by_child:
        return sorted(found, key=lambda x: x.start)
    # A full name: the introduction followed by two name-like words ("my name is Emma Stone").
    spoken = lang.get(language)
    for m in re.finditer(rf"\b(?:{spoken.name_intro})\s+([a-z'-]+)\s+([a-z'-]+)(?:\s+([a-z'-]+))?", norm):
        first, last = m.group(1), m.group(2)
        if first not in spoken.not_names and last not in spoken.not_names and len(last) > 1 and not _is_common(last, language):
            found.append(Match("personal_info", "full_name", m.start(1), m.end(2)))
    if len(norm) == len(text):  # positions line up with the original, whose capitals tell names
        for m in re.finditer(rf"(?i:\b(?:{spoken.weak_intro}))\s+([A-ZÀ-Ý][\w'-]+)\s+([A-ZÀ-Ý][\w'-]+)", text):
            found.append(Match("personal_info", "full_name", m.start(1), m.end(2)))
    return sorted(found, key=lambda x: x.start)


def _is_common(word: str, language: str) -> bool:
    """A word that follows a first name in ordinary speech ("my name is Emma and ...", "je suis Emma
    aussi"); anything else after a first name is taken as a surname, to err on the side of privacy."""
    spoken = lang.get(language)
    return word in spoken.common_after_name or word.endswith(spoken.common_suffixes)
