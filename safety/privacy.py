"""What may be written to disk about a child: no audio, transcripts only when enabled, and then redacted."""

from __future__ import annotations

from typing import Any, Callable

# Events that carry the child's own words, and the field holding them.
CHILD_WORDS = {"turn_start": "text", "heard": "text"}
NOT_KEPT = "[not kept: privacy.keep_transcripts is false]"


def scrubber(keep_transcripts: bool, redact: Callable[[str], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A filter for the events file: the child's words dropped (or redacted when kept), other text redacted."""

    def scrub(record: dict[str, Any]) -> dict[str, Any]:
        field = CHILD_WORDS.get(record.get("event", ""))
        out = dict(record)
        if field and isinstance(out.get(field), str):
            out[field] = redact(out[field]) if keep_transcripts else NOT_KEPT
        elif out.get("event") == "blocked" and out.get("stage") == "input":
            # The child's words, with only the unsafe part masked: kept like any transcript.
            out["masked"] = redact(out["masked"]) if keep_transcripts else NOT_KEPT
        elif isinstance(out.get("text"), str):
            out["text"] = redact(out["text"])
        return out

    return scrub


def remote_warning(backend: str, where: str) -> str:
    """The start-up warning when the child's words leave the machine."""
    return (f"privacy: llm.backend is {backend}: what the children say (with personal information removed) is sent to "
            f"{where}; use llm.backend: local to keep everything on this machine")
