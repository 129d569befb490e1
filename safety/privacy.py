"""What may be written to disk about a child: no audio, transcripts only when enabled, and then redacted."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, MutableMapping, Optional

from events import BlockedEvent, Event, Heard, Safeguarding, SpeechEnd, TurnEnd, TurnStart

# Events that carry the child's own words, and the field holding them. The end of a turn names the
# last word the child said before it ("ends on 'dragon'").
CHILD_WORDS: dict[type[Event], str] = {TurnStart: "text", Heard: "text", Safeguarding: "words", SpeechEnd: "words",
                                       TurnEnd: "end_words"}
NOT_KEPT = "[not kept: privacy.keep_transcripts is false]"


def child_words_field(event: Event) -> Optional[str]:
    """The field of the event that holds the child's own words, or None."""
    if isinstance(event, BlockedEvent):
        # What the child said, with only the unsafe part masked: kept like any transcript.
        return "masked" if event.stage == "input" else None
    return CHILD_WORDS.get(type(event))


def scrubber(keep_transcripts: bool, redact: Callable[[str], str]) -> Callable[[Event], Event]:
    """A filter for the events file: the child's words dropped (or redacted when kept), other text redacted."""

    def scrub(event: Event) -> Event:
        field = child_words_field(event)
        if field and isinstance(getattr(event, field), str):
            return dataclasses.replace(event, **{field: redact(getattr(event, field)) if keep_transcripts else NOT_KEPT})
        if isinstance(getattr(event, "text", None), str):
            return dataclasses.replace(event, text=redact(event.text))
        return event

    return scrub


def remote_warning(backend: str, where: str) -> str:
    """The start-up warning when the child's words leave the machine."""
    return (f"privacy: llm.backend is {backend}: what the children say (with personal information removed) is sent to "
            f"{where}; use llm.backend: local to keep everything on this machine")


# Switches that keep libraries from collecting or sending usage data. onnxruntime (Silero VAD,
# Piper) otherwise stores a device id and an event per session under
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime, to be sent once the machine is online; it reads
# the switch when it is first imported, so it must be set before that.
NO_TELEMETRY = {
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub / transformers: no usage pings on downloads
    "VLLM_NO_USAGE_STATS": "1",  # a vLLM server started from this environment
    "DO_NOT_TRACK": "1",  # the common switch other libraries honour
}


def no_telemetry(environ: Optional[MutableMapping[str, str]] = None) -> None:
    """Switch off every library's telemetry for this process and the processes it starts."""
    env = os.environ if environ is None else environ
    for key, value in NO_TELEMETRY.items():
        env[key] = value
