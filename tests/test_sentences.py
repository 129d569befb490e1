"""Sentence splitting of a streamed story: table cases under many chunkings, plus properties."""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm.sentences import SentenceSplitter, clean_for_speech

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def split(chunks, language="en", max_words=30):
    splitter = SentenceSplitter(max_words=max_words, language=language)
    out = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    out.extend(splitter.flush())
    return out


def chunkings(text):
    """The whole text, char by char, LLM-like tokens, random 1-4 char pieces, and every 2-way split."""
    yield "whole", [text]
    yield "chars", list(text)
    yield "llm-tokens", re.findall(r" ?[^\W_]{1,4}| ?[^\w\s]|_|\s", text)
    for seed in range(3):
        rng, pieces, i = random.Random(seed), [], 0
        while i < len(text):
            n = rng.randint(1, 4)
            pieces.append(text[i : i + n])
            i += n
        yield f"random-1-4-seed{seed}", pieces
    for i in range(1, len(text)):
        yield f"split-at-{i}", [text[:i], text[i:]]


def words(sentence):
    """A word is a whitespace-separated token with a letter or digit (a lone dash or quote is not)."""
    return [w for w in sentence.split() if any(c.isalnum() for c in w)]


# (id, language, max_words, stream, expected sentences)
CASES = [
    # --- English: abbreviations, initials, numbers
    ("en-titles", "en", 30, "Mr. Fox and Mrs. Hen met Dr. Owl on St. Mary's Road. They waved.",
     ["Mr. Fox and Mrs. Hen met Dr. Owl on St. Mary's Road.", "They waved."]),
    ("en-eg-ie", "en", 30, "We packed snacks, e.g. Apples and i.e. Pears. Then we left.",
     ["We packed snacks, e.g. Apples and i.e. Pears.", "Then we left."]),
    ("en-initials", "en", 30, "J. R. R. Tolkien wrote about hobbits. They lived in holes.",
     ["J. R. R. Tolkien wrote about hobbits.", "They lived in holes."]),
    ("en-I-ends", "en", 30, "Who ate the cake? It was I. Then I slept.",
     ["Who ate the cake?", "It was I.", "Then I slept."]),
    ("en-decimals", "en", 30, "The bridge was 3.5 meters long. It weighed 1.000 tons.",
     ["The bridge was 3.5 meters long.", "It weighed 1.000 tons."]),
    ("en-number-end", "en", 30, "She counted to 10. Then she looked.", ["She counted to 10.", "Then she looked."]),
    ("en-etc", "en", 30, "Cats, dogs, etc. were there. Birds etc. Then rain.",
     ["Cats, dogs, etc. were there.", "Birds etc.", "Then rain."]),
    ("en-no-space", "en", 30, "Visit fox.com today.Or not.", ["Visit fox.com today.Or not."]),
    ("en-punct-runs", "en", 30, "Really?! Yes!!! Okay.", ["Really?!", "Yes!!!", "Okay."]),
    ("en-bracket", "en", 30, "(It was late.) The stars came out.", ["(It was late.)", "The stars came out."]),
    # --- ellipses
    ("en-ellipsis-lower", "en", 30, "Well... maybe. Hmm… maybe later.", ["Well... maybe.", "Hmm… maybe later."]),
    ("en-ellipsis-upper", "en", 30, "He waited... Then the door opened.", ["He waited...", "Then the door opened."]),
    ("en-ellipsis-char", "en", 30, "He waited… Then the door opened.", ["He waited…", "Then the door opened."]),
    # --- dialogue
    ("en-quote-lower", "en", 30, '"Where are you?" asked the fox.', ['"Where are you?" asked the fox.']),
    ("en-quote-upper", "en", 30, '"Run!" The fox ran.', ['"Run!"', "The fox ran."]),
    ("en-curly", "en", 30, "“Hello,” said the owl. “Hello!” The moon smiled. ‘Shh.’ She slept.",
     ["“Hello,” said the owl.", "“Hello!”", "The moon smiled.", "‘Shh.’", "She slept."]),
    ("en-quote-mid", "en", 30, 'He said, "Stop." and sat down. She whispered, “Goodnight.” Then she slept.',
     ['He said, "Stop." and sat down.', "She whispered, “Goodnight.”", "Then she slept."]),
    ("en-quote-comma", "en", 30, "'I can fly!', said the bird.", ["'I can fly!', said the bird."]),
    ("en-story", "en", 30,
     "Once upon a time, in a forest full of tall pine trees, there lived a little fox named Pip.\n"
     '"Where are you going?" asked Mrs. Owl from her branch.\n'
     '"To find the moon!" Pip said. "It fell into the lake... I saw it."\n\n'
     'Mrs. Owl laughed softly. "Oh, Pip. That is only its reflection."',
     ["Once upon a time, in a forest full of tall pine trees, there lived a little fox named Pip.",
      '"Where are you going?" asked Mrs. Owl from her branch.', '"To find the moon!"', "Pip said.",
      '"It fell into the lake...', 'I saw it."', "Mrs. Owl laughed softly.", '"Oh, Pip.',
      'That is only its reflection."']),
    # --- newlines and list markers
    ("newline-ends", "en", 30, "Once upon a time\nthere was a fox", ["Once upon a time", "there was a fox"]),
    ("blank-lines", "en", 30, "One.\n\n\n  \nTwo.\r\nThree", ["One.", "Two.", "Three"]),
    ("newline-after-abbrev", "en", 30, "Ask Mr.\nSmith", ["Ask Mr.", "Smith"]),
    ("numbered-list", "en", 30, "1. Pack a bag.\n2. Find the map. Then rest.\n  3) Go!\n10. Sing",
     ["Pack a bag.", "Find the map.", "Then rest.", "Go!", "Sing"]),
    ("bullets", "en", 30, "- apples\n* pears\n• plums\n+ figs", ["apples", "pears", "plums", "figs"]),
    ("lone-markers", "en", 30, "1.\n2.\n-\n", []),
    ("number-not-marker", "en", 30, "1.5 cups of milk.\nStep 1. Then step 2.",
     ["1.5 cups of milk.", "Step 1.", "Then step 2."]),
    ("marker-then-numbers", "en", 30, "1. 2. 3. Go!", ["2.", "3.", "Go!"]),
    # --- markdown and emoji
    ("headings", "en", 30, "# The Brave Fox\n## Chapter 1\nOnce upon a time.",
     ["The Brave Fox", "Chapter 1", "Once upon a time."]),
    ("emphasis", "en", 30, "**Run!** said the fox. The _owl_ laughed. Wait... *maybe* not.",
     ["Run! said the fox.", "The owl laughed.", "Wait... maybe not."]),
    ("emphasis-sentence", "en", 30, "The end. **The moral:** be __kind__.", ["The end.", "The moral: be kind."]),
    ("link-code", "en", 30, "Read the [old map](https://example.com/map.png) now. Say `abracadabra`.",
     ["Read the old map now.", "Say abracadabra."]),
    ("emoji", "en", 30, "The fox 🦊 ran home. 🎉\n❤️ The end 👨‍👩‍👧. ⭐✨",
     ["The fox ran home.", "The end."]),
    ("symbols-only", "en", 30, "Hi! ... — !\n***\n😀", ["Hi!"]),
    # --- French
    ("fr-quote-lower", "fr", 30, "« Où es-tu ? » demanda le renard.", ["« Où es-tu ? » demanda le renard."]),
    ("fr-quote-upper", "fr", 30, "« Cours ! » Le renard courut.", ["« Cours ! »", "Le renard courut."]),
    ("fr-nbsp", "fr", 30, "«\u00a0Où es-tu\u00a0?\u00a0» demanda le renard. Bonjour ! Comment vas-tu ?",
     ["« Où es-tu ? » demanda le renard.", "Bonjour !", "Comment vas-tu ?"]),
    ("fr-titles", "fr", 30, "M. Dupont et Mme Martin arrivent. Ils sourient.",
     ["M. Dupont et Mme Martin arrivent.", "Ils sourient."]),
    ("fr-p-ex", "fr", 30, "Des fruits, p. ex. Les pommes. Puis la nuit.",
     ["Des fruits, p. ex. Les pommes.", "Puis la nuit."]),
    ("fr-ellipsis", "fr", 30, "Il attendit… Puis la porte s'ouvrit. Il a dit « oui ». Puis il est parti.",
     ["Il attendit…", "Puis la porte s'ouvrit.", "Il a dit « oui ».", "Puis il est parti."]),
    # --- German
    ("de-quote-comma", "de", 30, "„Wo bist du?“, fragte der Fuchs.", ["„Wo bist du?“, fragte der Fuchs."]),
    ("de-quote-upper", "de", 30, "„Lauf!“ Der Fuchs rannte. »Halt!« Die Eule rief.",
     ["„Lauf!“", "Der Fuchs rannte.", "»Halt!«", "Die Eule rief."]),
    ("de-quote-inner", "de", 30, "Er sagte: „Komm her.“ Dann ging er.", ["Er sagte: „Komm her.“", "Dann ging er."]),
    ("de-abbrev", "de", 30, "Tiere, z. B. Hunde, z.B. Katzen, d. h. Alle. Das ist Nr. 5 von Dr. Müller.",
     ["Tiere, z. B. Hunde, z.B. Katzen, d. h. Alle.", "Das ist Nr. 5 von Dr. Müller."]),
    ("de-usw", "de", 30, "Äpfel, Birnen usw. und so weiter. Äpfel, Birnen usw. Dann gingen sie.",
     ["Äpfel, Birnen usw. und so weiter.", "Äpfel, Birnen usw.", "Dann gingen sie."]),
    ("de-ordinal", "de", 30, "Am 3. Mai kam der Fuchs. Er wartete... Dann kam die Eule.",
     ["Am 3. Mai kam der Fuchs.", "Er wartete...", "Dann kam die Eule."]),
    # --- long sentences (max_words)
    ("cut-clause", "en", 8, "one two three, four five six seven eight nine ten.",
     ["one two three,", "four five six seven eight nine ten."]),
    ("cut-last-clause", "en", 8, "a b c, d e f; g h i j.", ["a b c, d e f;", "g h i j."]),
    ("cut-clause-too-early", "en", 8, "one two, three four five six seven eight nine.",
     ["one two, three four five six seven eight", "nine."]),
    ("cut-dash", "en", 8, "one two three — four five six seven eight nine.",
     ["one two three —", "four five six seven eight nine."]),
    ("cut-hyphenated-word", "en", 5, "a well-known fox ran far away.", ["a well-known fox ran far", "away."]),
    ("cut-words", "en", 4, "a b c d e f g h i j", ["a b c d", "e f g h", "i j"]),
    ("cut-exact", "en", 8, "one two three four five six seven eight. Nine ten.",
     ["one two three four five six seven eight.", "Nine ten."]),
    ("cut-symbols-not-words", "en", 3, "a — b 🦊 c “d e", ["a — b c", "“d e"]),
    ("cut-keeps-quote-with-word", "fr", 3, "un deux trois « quatre cinq", ["un deux trois", "« quatre cinq"]),
    ("cut-long-story", "en", 30,
     "The little fox ran through the forest and over the hill and past the river and under the old bridge "
     "where the trolls used to live, and then she kept running until the stars came out and the moon rose "
     "high above the sleepy village.",
     ["The little fox ran through the forest and over the hill and past the river and under the old bridge "
      "where the trolls used to live,",
      "and then she kept running until the stars came out and the moon rose high above the sleepy village."]),
]


@pytest.mark.parametrize("language,max_words,text,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases_under_every_chunking(language, max_words, text, expected):
    for name, chunks in chunkings(text):
        assert "".join(chunks) == text
        assert split(chunks, language, max_words) == expected, name


@pytest.mark.parametrize("text,expected", [
    ("**Bold** and _it_ and __b__ `code` ~~gone~~", "Bold and it and b code gone"),
    ("snake_case stays", "snake_case stays"),
    ("# Title\n## Sub", "Title Sub"),
    ("#hashtag", "#hashtag"),
    ("- a\n* b\n• c\n+ d\n1. e\n22) f\n1234. g", "a b c d e f 1234. g"),
    ("see [the map](https://x.org/a_b.png)!", "see the map!"),
    ("The fox 🦊 ran. The end 👨‍👩‍👧. ❤️ Love ⭐", "The fox ran. The end. Love"),
    ("  lots   of\t\tspace \n\n here  ", "lots of space here"),
    ("1.5 and 3.", "1.5 and 3."),
    ("", ""),
])
def test_clean_for_speech(text, expected):
    assert clean_for_speech(text) == expected


def test_boundary_waits_for_the_character_after_the_space():
    splitter = SentenceSplitter()
    assert splitter.feed("Mr.") == []
    assert splitter.feed(" ") == []
    assert splitter.feed("Smith said the end.") == []
    assert splitter.feed("  ") == []
    assert splitter.feed("T") == ["Mr. Smith said the end."]
    assert splitter.feed("hen.") == []
    assert splitter.flush() == ["Then."]


def test_flush_empties_and_splitter_is_reusable():
    splitter = SentenceSplitter(language="de")
    assert splitter.feed("Hallo Welt. Wie geht's") == ["Hallo Welt."]
    assert splitter.flush() == ["Wie geht's"]
    assert splitter.flush() == []
    assert splitter.feed("1. Eins") == []  # back at a line start: "1." is a list marker again
    assert splitter.flush() == ["Eins"]


def test_invalid_max_words():
    with pytest.raises(ValueError):
        SentenceSplitter(max_words=0)


def test_long_stream_is_linear_and_buffer_holds_one_sentence():
    story = ("Mr. Fox said, “Look at the moon!” The owl (who was 3.5 years old) laughed... "
             "Then they slept.\n") * 3000  # ~270k characters
    splitter, count, start = SentenceSplitter(), 0, time.perf_counter()
    for i in range(0, len(story), 3):  # one feed per ~token
        count += len(splitter.feed(story[i : i + 3]))
        assert len(splitter._buf) < 120  # only the unfinished sentence is kept
    count += len(splitter.flush())
    assert count == 3 * 3000
    assert time.perf_counter() - start < 5  # quadratic re-splitting would take minutes


# --- properties ------------------------------------------------------------------------------
VOCABULARY = [
    # words, abbreviations, initials
    "the", "fox", "Fox", "ran", "Moon", "owl", "I", "a", "über", "Élan", "Zoë", "snake_case", "well-known",
    "Mr.", "Mrs.", "Dr.", "St.", "e.g.", "i.e.", "M.", "Mme", "p. ex.", "z. B.", "z.B.", "d. h.", "usw.",
    "Nr.", "etc.", "J.", "R.", "U.S.A.",
    # numbers
    "3.5", "1.000", "42", "1.", "2)", "10.", "7",
    # punctuation and quotes
    ".", "!", "?", "?!", "...", "…", ",", ";", ":", "—", "–", "-", '"', "'", "“", "”", "‘", "’", "«", "»",
    "„", "(", ")",
    # markdown, list markers, emoji
    "**", "*", "_", "`", "# ", "## ", "- ", "* ", "• ", "1. ", "2) ", "[map](https://x.org/a.b)",
    "🦊", "❤️", "👨‍👩‍👧", "🎉",
]
SEPARATORS = ["", " ", " ", " ", "  ", "\n", "\n\n", "\u00a0"]
LANGUAGES = st.sampled_from(["en", "fr", "de"])
MAX_WORDS = st.sampled_from([1, 2, 3, 5, 8, 30])

pieces = st.tuples(st.sampled_from(VOCABULARY), st.sampled_from(SEPARATORS)).map("".join)
texts = st.lists(pieces, max_size=60).map("".join)


@st.composite
def stories(draw, language="fr"):
    """Well-formed sentences (each has a word; links have one-word text), in lines, with markup."""
    # "? " and "»" after a space belong to the sentence only in French; elsewhere it opens a quote.
    french = [" »", " ?", " !"] if language == "fr" else []
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        line = draw(st.sampled_from(["", "", "# ", "- ", "1. ", "• "]))
        for _ in range(draw(st.integers(0, 4))):
            n = draw(st.integers(1, 12))
            toks = draw(st.lists(st.sampled_from([
                "the", "fox", "Moon", "owl", "I", "3.5", "1.000", "Mr.", "Dr.", "e.g.", "z. B.", "J.", "usw.",
                "etc.", "fox,", "owl;", "moon:", "—", "🦊", "**big**", "_sly_", "`spell`", "[map](https://x.org/a.b)",
                "well...", "Hmm…", "über", "Mme",
            ]), min_size=n, max_size=n))
            toks.insert(0, draw(st.sampled_from(["Fox", "The", "“Run", '"Where', "„Wo", "« Où", "(Once", "Owl"])))
            toks.append(draw(st.sampled_from(["fox", "moon", "Owl", "7"])))  # the end is never a lone "—."
            end = draw(st.sampled_from([".", "!", "?", "...", "…", "?!", *french[1:]]))
            close = draw(st.sampled_from(["", "", '"', "”", "“", ")", "**", *french[:1]]))
            line += " ".join(toks) + end + close + draw(st.sampled_from([" ", "  ", " asked the fox. ", " "]))
        lines.append(line)
    return draw(st.sampled_from(["\n", "\n\n"])).join(lines)


@st.composite
def chunked(draw, text):
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=len(text) + 1))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@PROPERTY
@given(st.data(), texts, LANGUAGES, MAX_WORDS)
def test_property_chunking_invariance(data, text, language, max_words):
    chunks = data.draw(chunked(text))
    assert split(chunks, language, max_words) == split([text], language, max_words)


@PROPERTY
@given(texts, LANGUAGES, MAX_WORDS)
def test_property_nothing_lost_or_reordered(text, language, max_words):
    sentences = split([text], language, max_words)
    alnum = re.compile(r"[^\W_]+")
    assert alnum.findall(" ".join(sentences)) == alnum.findall(clean_for_speech(text))


@PROPERTY
@given(LANGUAGES.flatmap(lambda lang: st.tuples(st.just(lang), stories(lang))), MAX_WORDS)
def test_property_sentences_are_the_cleaned_text(language_and_text, max_words):
    language, text = language_and_text
    sentences = split(list(text), language, max_words)
    assert re.sub(r"\s", "", "".join(sentences)) == re.sub(r"\s", "", clean_for_speech(text))


@PROPERTY
@given(texts, texts, LANGUAGES, MAX_WORDS)
def test_property_no_sentence_before_it_is_complete(prefix, rest, language, max_words):
    splitter = SentenceSplitter(max_words=max_words, language=language)
    early = splitter.feed(prefix)
    assert split([prefix + rest], language, max_words)[: len(early)] == early


@PROPERTY
@given(st.one_of(texts, stories()), LANGUAGES, MAX_WORDS)
def test_property_sentences_are_short_and_clean(text, language, max_words):
    for sentence in split([text], language, max_words):
        assert 1 <= len(words(sentence)) <= max_words, sentence
        assert sentence == " ".join(sentence.split())  # no newline, no double or edge space
