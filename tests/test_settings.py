"""Config loading: defaults, the shipped files, and one-line errors naming the key."""

from pathlib import Path

import pytest

from errors import ConfigError
from settings import Settings, load_settings
from tests.helpers import ROOT, run_main


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["config.yaml", "configs/starter.yaml"])
def test_shipped_configs_are_valid(name):
    settings = load_settings(ROOT / name)
    assert settings.story.language in ("en", "fr", "de")


def test_shipped_config_lists_every_key_with_its_default():
    """config.yaml is the reference: it names every setting, and its values are the defaults."""
    assert load_settings(ROOT / "config.yaml") == Settings()
    text = (ROOT / "config.yaml").read_text()
    for section, model in Settings.model_fields.items():
        for key in model.annotation.model_fields:
            assert f"  {key}:" in text, f"{section}.{key} is not documented in config.yaml"


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("llm:\n  bakend: local\n", "unknown key 'llm.bakend'; allowed here: backend,"),
        ("llm:\n  backend: cloud\n", "llm.backend: Input should be 'local', 'hf-inference', 'llamacpp' or 'openai' (got 'cloud')"),
        ("story:\n  age_group: Babies\n", "story.age_group: must be one of Toddlers, Preschoolers"),
        ("story:\n  language: es\n", "story.language: must be one of de, en, fr (a language is a file in lang/; got 'es')"),
        ("listen:\n  language: es\n", "listen.language: must be one of de, en, fr, auto (a language is a file in lang/; got 'es')"),
        ("llm:\n  max_new_tokens: 0\n", "llm.max_new_tokens: Input should be greater than or equal to 1"),
        ("llm:\n  device: gpu\n", "llm.device: must be auto, cpu, cuda, cuda:N or mps (got 'gpu')"),
        ("colour: blue\n", "unknown key 'colour'; allowed here: llm, story, speech, listen, audio, events, activities, screen, safety, privacy"),
        ("llm: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
        # llama.cpp and vLLM take a 32-bit seed: a larger one used to fail every turn instead.
        ("llm:\n  seed: 99999999999999999999\n", "llm.seed: Input should be less than or equal to 4294967295"),
        ("llm:\n  seed: -1\n", "llm.seed: Input should be greater than or equal to 0"),
        ("story:\n  max_request_chars: 5\n", "story.max_request_chars: Input should be greater than or equal to 20"),
    ],
)
def test_bad_config_fails_with_one_line_naming_the_key(tmp_path, yaml_text, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, yaml_text))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_age_group_spellings_are_accepted(tmp_path):
    settings = load_settings(write(tmp_path, "story:\n  age_group: late-elementary\n"))
    assert settings.story.age_group == "Late Elementary"


def test_relative_model_paths_follow_the_config_file(tmp_path):
    (tmp_path / "adapter").mkdir()
    settings = load_settings(write(tmp_path, "llm:\n  model: custom\n  adapter: adapter\n  base_model: org/model\n"))
    assert settings.llm.adapter == str((tmp_path / "adapter").resolve())
    assert settings.llm.base_model == "org/model"  # not a folder here: a hub id stays as it is


def test_cli_override_is_validated_like_the_file():
    with pytest.raises(ConfigError, match="command line: story.age_group"):
        Settings().with_overrides(story={"age_group": "Grown-ups"})


def test_app_reports_bad_config_in_one_line_and_exit_code_2(tmp_path):
    result = run_main("--text", "--config", str(write(tmp_path, "llm:\n  temperature: hot\n")))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "llm.temperature" in result.stderr and "Traceback" not in result.stderr


def test_missing_config_file_is_one_line(tmp_path):
    result = run_main("--text", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "config file not found" in result.stderr and "Traceback" not in result.stderr


def test_a_bare_yaml_off_or_on_means_the_word(tmp_path):
    """YAML 1.1 reads `off` as false: the choices that spell "off" / "on" get their word, others still fail."""
    path = tmp_path / "c.yaml"
    path.write_text("listen:\n  turn_model: off\nsafety:\n  meaning: off\n  self_check: on\nactivities:\n  questions: off\n")
    s = load_settings(path)
    assert (s.listen.turn_model, s.safety.meaning, s.safety.self_check, s.activities.questions) == ("off", "off", "on", "off")
    path.write_text("safety:\n  meaning: on\n")  # "on" is not one of meaning's choices
    with pytest.raises(ConfigError, match="meaning"):
        load_settings(path)
