"""The fast rule layer: word lists and personal-information patterns, matched on normalized text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from safety.lexicon import CATEGORIES, FUZZY, LEXICON

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
        for fragment in LEXICON[language].get(category, ()):
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
    all_variants = variants(text)
    for variant in all_variants:
        exact = len(variant) == len(all_variants[0])  # plain and leet spellings keep every character in place
        for category, fragment, pattern in _compiled(language):
            m = pattern.search(variant)
            if m and (category, fragment) not in found:
                found[(category, fragment)] = Match(category, fragment, m.start(), m.end(), exact)
        for m in re.finditer(r"[a-z]{5,}", variant):
            for category, words in FUZZY.get(language, {}).items():
                for word in words:
                    if _close(m.group(0), word) and (category, "~" + word) not in found:
                        found[(category, "~" + word)] = Match(category, "~" + word, m.start(), m.end(), exact)
    return sorted(found.values(), key=lambda x: (CATEGORIES.index(x.category), x.start))


# Personal information: each pattern names what it is. Whisper writes spoken numbers as digits,
# but a child may also say them one by one ("five five five ..."), so both are caught.
_DIGIT_WORDS = {
    "en": "zero|oh|one|two|three|four|five|six|seven|eight|nine",
    # French numbers are said in pairs ("zéro six, douze, trente-quatre"), so the tens count too.
    "fr": "zero|un|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|vingt|trente|quarante|cinquante|soixante|quatre-vingts?|[a-z]+(?:-[a-z]+)+",
    "de": "null|eins|zwei|drei|vier|funf|sechs|sieben|acht|neun",
}
_STREET = {
    "en": r"street|st|road|rd|avenue|ave|lane|drive|dr|way|court|close|crescent|boulevard|blvd|terrace|place",
    "fr": r"rue|avenue|av|boulevard|bd|chemin|allee|impasse|place|route|quai",
    "de": r"strasse|str|weg|gasse|platz|allee|ring|damm",
}
_NAME_INTRO = {
    "en": r"my name is|my full name is|my name's",
    "fr": r"je m'appelle|mon nom est|mon nom c'est",
    "de": r"ich heisse|mein name ist",
}
# Weaker introductions ("I'm", "je suis", "ich bin") name someone only when both words are
# written as names (Whisper capitalises names): "Ich bin Max Müller", not "Ich bin dein Freund".
_WEAK_INTRO = {"en": r"i'm|i am|i'm called|i am called", "fr": r"je suis", "de": r"ich bin"}
_SCHOOL = {"en": r"school|academy", "fr": r"ecole|college", "de": r"schule|grundschule|gymnasium"}
_NOT_NAMES = {  # words after "my name is"/"je suis"/"ich bin" that are not a surname
    "en": {"and", "but", "so", "i", "im", "the", "a", "years", "year", "from", "in", "at", "not", "very", "too", "also", "please"},
    "fr": {"et", "mais", "je", "j", "un", "une", "le", "la", "tres", "trop", "pas", "content", "contente", "triste", "ans", "en", "a", "de", "ici"},
    "de": {"und", "aber", "ich", "ein", "eine", "der", "die", "das", "sehr", "zu", "nicht", "jahre", "in", "aus", "hier", "muede", "mude", "traurig", "froh"},
}


def _personal_patterns(language: str) -> list[tuple[str, re.Pattern[str]]]:
    digits = _DIGIT_WORDS[language]
    street = _STREET[language]
    school = _SCHOOL[language]
    pats = [
        ("email", r"[\w.+-]+@[\w-]+\.[\w.]+|\b[\w.]+ (at|arobase|ät) [\w-]+ (dot|point|punkt) (com|org|net|fr|de|ch|co|uk)\b"),
        ("phone_digits", r"(?<!\d)\+?\d(?:[\s./()-]*\d){6,}"),
        ("phone", rf"\b(?:(?:{digits})[\s,.-]+){{{4 if language == 'fr' else 6},}}(?:{digits})\b"),
    ]
    # School names are looked for only where the child speaks of their own school: a story's
    # "village school" is nobody's personal information.
    if language == "en":
        pats.append(("address", rf"\b\d+[a-z]?,?\s+(?:[a-z]+\s+){{1,3}}(?:{street})\b"))
        pats.append(("address", r"\bi live (?:at|on) (?:number )?\d+"))
        pats.append(("school", rf"\b(?:i go to|i'm at|i am at|i attend|i'm in|my school is)\s+(?!(?:a|the|my|our|big|new|kindergarten|preschool|nursery|primary|elementary|middle|high|summer|sunday|swimming|dance|music|art)\s+(?:{school})\b)(?:[a-z'-]+\s+){{1,3}}(?:{school})\b"))
        pats.append(("school", r"\bmy school(?:'s name)? is (?:called|named) [a-z'-]+"))
        pats.append(("zip", r"\b(?:zip|post) ?code\b"))
    elif language == "fr":
        pats.append(("address", rf"\b\d+(?:\s?(?:bis|ter))?,?\s+(?:{street})\b"))
        pats.append(("address", rf"\bj'habite (?:au |a |le )?(?:\d+|(?:{street})\b)"))
        pats.append(("school", rf"\b(?:je vais|je suis|mon ecole|mon college)\b.{{0,12}}\b(?:{school})\s+(?!maternelle|primaire|de musique|de danse)[a-z'-]{{3,}}"))
        pats.append(("school", rf"\bmon (?:{school}) (?:s'appelle|c'est) [a-z'-]+"))
        pats.append(("zip", r"\bcode postal\b"))
    else:
        pats.append(("address", rf"\b[a-z-]+(?:{street})\s+\d+\b"))
        pats.append(("address", rf"\bich wohne (?:in der|im|am|in|auf der) [a-z-]+(?:{street})\b"))
        pats.append(("school", r"\b(?:ich gehe|gehe|ich bin|meine schule)\b.{0,20}?\b(?!grundschule\b|vorschule\b|schule\b)[a-z-]{3,}(?:schule|gymnasium)\b"))
        pats.append(("school", r"\bmeine schule heisst [a-z'-]+"))
        pats.append(("zip", r"\bpostleitzahl\b"))
    return [(kind, re.compile(p)) for kind, p in pats]


_PERSONAL = {lang: _personal_patterns(lang) for lang in LEXICON}


def personal_matches(text: str, language: str, spoken_by_child: bool = True) -> list[Match]:
    """Phone numbers and e-mail addresses; in what a child says also addresses, school names and full names.

    A story may count "one, two, three, four, five, six, seven", live at "221 Baker Street" or
    have a fox say "je suis perdu dans la forêt": those patterns are for the child's words only.
    """
    norm = normalize(text)
    kinds = None if spoken_by_child else {"email", "phone_digits"}
    found = [Match("personal_info", kind.removesuffix("_digits"), m.start(), m.end())
             for kind, p in _PERSONAL[language] if kinds is None or kind in kinds for m in p.finditer(norm)]
    if not spoken_by_child:
        return sorted(found, key=lambda x: x.start)
    # A full name: the introduction followed by two name-like words ("my name is Emma Stone").
    for m in re.finditer(rf"\b(?:{_NAME_INTRO[language]})\s+([a-z'-]+)\s+([a-z'-]+)(?:\s+([a-z'-]+))?", norm):
        first, last = m.group(1), m.group(2)
        if first not in _NOT_NAMES[language] and last not in _NOT_NAMES[language] and len(last) > 1 and not _is_common(last, language):
            found.append(Match("personal_info", "full_name", m.start(1), m.end(2)))
    if len(norm) == len(text):  # positions line up with the original, whose capitals tell names
        for m in re.finditer(rf"(?i:\b(?:{_WEAK_INTRO[language]}))\s+([A-ZÀ-Ý][\w'-]+)\s+([A-ZÀ-Ý][\w'-]+)", text):
            found.append(Match("personal_info", "full_name", m.start(1), m.end(2)))
    return sorted(found, key=lambda x: x.start)


# Words that follow a first name in ordinary speech ("my name is Emma and ...", "je suis Emma
# aussi"); anything else after a first name is taken as a surname, to err on the side of privacy.
_COMMON_AFTER_NAME = {
    "en": {"and", "but", "so", "too", "please", "tell", "can", "could", "i", "what", "hello", "hi", "thank", "thanks", "i'm", "how", "will", "would", "let's", "lets", "yes", "no", "ok", "okay", "now", "today"},
    "fr": {"et", "mais", "aussi", "raconte", "tu", "s'il", "merci", "bonjour", "salut", "oui", "non", "peux", "j'ai", "je", "est-ce", "aujourd'hui"},
    "de": {"und", "aber", "auch", "erzahl", "erzahle", "kannst", "bitte", "danke", "hallo", "ja", "nein", "ich", "wie", "heute"},
}


def _is_common(word: str, language: str) -> bool:
    return word in _COMMON_AFTER_NAME[language] or word.endswith(("ing", "ly")) and language == "en"
