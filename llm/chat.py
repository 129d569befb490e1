"""Chat templates that drop the system role: detect them, and fold the system prompt into the first user turn."""

from __future__ import annotations

from typing import Any


def template_keeps_system(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a system message (some silently drop it)."""
    probe = [{"role": "system", "content": "SYSTEM-PROBE"}, {"role": "user", "content": "hi"}]
    try:
        text = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - templates raise anything on an unknown role
        return False
    return "SYSTEM-PROBE" in text


def fold_system(messages: list[dict[str, str]], keeps_system: bool) -> list[dict[str, str]]:
    """The messages as the template can take them: without a system role, it opens the first user turn."""
    if keeps_system or not messages or messages[0]["role"] != "system":
        return messages
    if len(messages) == 1:  # the system prompt alone (a KV-cache prime at start-up)
        return [{"role": "user", "content": messages[0]["content"]}]
    system, first, rest = messages[0], messages[1], messages[2:]
    return [{"role": first["role"], "content": system["content"] + "\n\n" + first["content"]}, *rest]
