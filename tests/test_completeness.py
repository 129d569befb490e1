"""The words' side of the end of a turn: a pause after "about", "et", "mit" or "um" is not the end."""

import pytest

from audio.completeness import judge


@pytest.mark.parametrize("language, text", [
    ("en", "Tell me a story about"), ("en", "Tell me a story about."), ("en", "A story about a little fox and"),
    ("en", "Can you tell me about the"), ("en", "a dragon who"), ("en", "I want"), ("en", "um"), ("en", "the story about..."),
    ("fr", "Raconte-moi une histoire de"), ("fr", "une histoire avec un dragon et"), ("fr", "je veux une histoire sur l'"),
    ("fr", "euh"), ("de", "Erzähl mir eine Geschichte über"), ("de", "eine Geschichte mit einem Drachen und"),
    ("de", "ähm"), ("de", "über den"), ("en", "Tell me about a robot who?"), ("en", "a fox and?"),
    ("en", "Tell me about the..."), ("fr", "une histoire avec un dragon qui ?"), ("de", "eine Geschichte mit einem?"),
])
def test_a_pause_after_an_open_word_is_not_the_end(language, text):
    verdict = judge(text, language)
    assert not verdict.finished, verdict


@pytest.mark.parametrize("language, text", [
    ("en", "Tell me a story about a dragon."), ("en", "yes"), ("en", "the fox"), ("en", "I don't know"),
    ("en", "What happens next?"), ("en", "Can you say that again?"), ("fr", "Raconte-moi une histoire de loup."),
    ("fr", "oui"), ("fr", "le renard"), ("fr", "Et après ?"), ("de", "Erzähl mir eine Geschichte über einen Drachen."),
    ("de", "ja"), ("de", "der Fuchs"), ("de", "Und dann?"), ("en", "What is the story about?"), ("en", "Who?"),
    ("en", "Maybe..."), ("en", "Yes..."), ("fr", "Oui..."), ("en", "And then?"), ("de", "Was passiert dann?"),
])
def test_a_whole_request_or_a_short_answer_is_finished(language, text):
    verdict = judge(text, language)
    assert verdict.finished, verdict


def test_the_verdict_says_why():
    assert judge("Tell me a story about", "en").reason == "ends on 'about'"
    assert judge("", "en").reason == "no words yet" and not judge("", "en").finished
    assert judge("Tell me a story about a dragon", "it").finished  # other languages: the sound alone decides
