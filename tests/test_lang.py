"""One file per language: every language says and listens for the same things, and a new file adds a language."""

from __future__ import annotations

import ast
import dataclasses
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

import lang
from llm.intent import LABELS
from llm.prompts import Mode
from safety.lexicon import CATEGORIES
from safety.rules import _close
from settings import ListenSettings, Settings, StorySettings

ROOT = Path(__file__).resolve().parent.parent
FIELDS = [f.name for f in dataclasses.fields(lang.Language)]
# The only fields a language may leave empty: it writes no space before "!", has no surname endings,
# or no real word one letter from its fuzzy words.
MAY_BE_EMPTY = {"spaced_closers", "common_suffixes", "real_words_near_fuzzy"}
REGEXES = ("ask_for_questions", "ask_to_choose", "choice_stem", "dont_know", "articles", "question_words", "story_words",
           "digit_words", "name_intro", "weak_intro")


def placeholders(text: str) -> set[str]:
    """The {names} a line is formatted with."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_the_three_languages_are_found():
    assert {"en", "fr", "de"} <= set(lang.CODES)


@pytest.mark.parametrize("code", lang.CODES)
def test_every_language_defines_every_field(code):
    language = lang.get(code)
    assert language.code == code
    for name in FIELDS:
        value = getattr(language, name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            assert value > 0, (code, name)
        elif name not in MAY_BE_EMPTY:
            assert value, f"{code}: {name} is empty"
            if isinstance(value, (tuple, frozenset)):
                assert all(value), f"{code}: {name} has an empty entry"


@pytest.mark.parametrize("code", lang.CODES)
def test_every_language_has_the_same_modes_labels_and_categories_as_english(code):
    language, english = lang.get(code), lang.get("en")
    modes = {m.value for m in Mode}
    assert set(language.acknowledgements) == set(english.acknowledgements) == modes - {"repeat"}
    assert set(language.mode_instructions) == set(english.mode_instructions) == modes - {"new_story", "repeat"}
    assert set(language.intent_cues) == set(english.intent_cues) and set(language.intent_cues) <= set(LABELS)
    assert set(language.safety_words) == set(english.safety_words) and set(language.safety_words) <= set(CATEGORIES)
    assert set(language.safety_fuzzy) <= set(CATEGORIES)
    fuzzy = [word for words in language.safety_fuzzy.values() for word in words]
    assert all(any(_close(real, word) for word in fuzzy) for real in language.real_words_near_fuzzy)  # none stale
    assert {kind for kind, _ in language.personal_patterns} == {kind for kind, _ in english.personal_patterns}


@pytest.mark.parametrize("code", lang.CODES)
def test_every_line_has_the_placeholders_its_caller_fills(code):
    language, english = lang.get(code), lang.get("en")
    for name in FIELDS:
        value, reference = getattr(language, name), getattr(english, name)
        if isinstance(value, str) and name not in REGEXES:
            assert placeholders(value) == placeholders(reference), (code, name)
    for mode, instruction in language.mode_instructions.items():
        assert placeholders(instruction) == placeholders(english.mode_instructions[mode]), (code, mode)
    assert [placeholders(x) for x in language.who_question] == [set(), {"letter"}]
    assert {"hint"} == placeholders(language.hint) == placeholders(language.dont_know_hint)


@pytest.mark.parametrize("code", lang.CODES)
def test_every_pattern_compiles(code):
    language = lang.get(code)
    patterns = [getattr(language, name) for name in REGEXES] + list(language.choice_ordinals)
    patterns += [p for cues in language.intent_cues.values() for p in cues]
    patterns += [p for words in language.safety_words.values() for p in words]
    patterns += [p for _, p in language.personal_patterns]
    for pattern in patterns:
        re.compile(pattern)


def test_an_unknown_code_is_an_error_naming_the_known_ones():
    with pytest.raises(lang.UnknownLanguage) as info:
        lang.get("xx")
    message = str(info.value)
    assert "'xx'" in message and ", ".join(lang.CODES) in message and "\n" not in message


def test_the_settings_take_every_code_and_name_them_for_any_other():
    for code in lang.CODES:
        assert StorySettings(language=code).language == code
        assert ListenSettings(language=code).language == code
        assert getattr(Settings().speech.voices, code) is None  # a voice setting per language
    assert ListenSettings(language="auto").language == "auto"
    with pytest.raises(ValueError, match=re.escape(", ".join(lang.CODES))):
        StorySettings(language="xx")


def test_lang_imports_nothing_of_the_projects():
    """lang/ is the leaf every stage may import: the standard library and itself only."""
    for path in (ROOT / "lang").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top == "lang" or top in sys.stdlib_module_names, f"{path.name} imports {name}"


def _italian(folder: Path) -> None:
    """A fourth language written as a file of its own (English lines under a new code, for the test)."""
    (folder / "it.py").write_text(
        "import dataclasses\n\nfrom lang import Language, get\n\n"
        "LANGUAGE: Language = dataclasses.replace(get('en'), code='it', name='Italian', sorry='Ops!')\n")


def test_a_new_file_is_a_new_language(tmp_path, monkeypatch):
    _italian(tmp_path)
    (tmp_path / "_helpers.py").write_text("")  # a private module is no language
    (tmp_path / "xy.py").write_text("from lang import get\n\nLANGUAGE = get('en')\n")  # a code its file does not have
    monkeypatch.setattr(lang, "__path__", [*lang.__path__, str(tmp_path)])
    codes = lang.discover(lang.__path__)
    assert set(codes) == set(lang.CODES) | {"it", "xy"}
    monkeypatch.setattr(lang, "CODES", codes)
    try:
        assert lang.get("it").sorry == "Ops!" and lang.get("it").name == "Italian"
        with pytest.raises(lang.UnknownLanguage, match=r"lang/xy.py must define LANGUAGE = Language\(code='xy'"):
            lang.get("xy")
    finally:
        lang._load.cache_clear()
        for name in ("lang.it", "lang.xy"):
            sys.modules.pop(name, None)


@pytest.mark.integration
def test_a_new_file_needs_no_other_change_for_the_settings(tmp_path):
    """In a fresh process with lang/ plus it.py, config.yaml's `language: it` and speech.voices.it are taken."""
    copy = tmp_path / "lang"
    copy.mkdir()
    for path in (ROOT / "lang").glob("*.py"):
        (copy / path.name).write_text(path.read_text())
    _italian(copy)
    code = ("import lang, settings; print(lang.CODES); "
            "print(settings.StorySettings(language='it').language, settings.Settings().speech.voices.it)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.stdout.split("\n")[:2] == ["('de', 'en', 'fr', 'it')", "it None"], out.stderr
