"""What the screen shows, kept from the event stream: a pure object, so a new or reconnected page catches up."""

from __future__ import annotations

import json
from typing import Any, Optional

# Events that change what the screen shows; the rest (timings, turn_end details) are not sent.
SHOWN = {"session_start", "listening", "speech_start", "heard", "turn_start", "speak_start", "word",
         "speak_end", "speak_stopped", "turn_end", "question", "answer_judged", "choice", "error"}


class ScreenState:
    """The current face (listening, thinking, speaking), sentence, lit word, what the child said, the question."""

    def __init__(self, language: str = "en"):
        self.data: dict[str, Any] = {"type": "state", "face": "idle", "sentence": "", "previous": "", "word": -1,
                                     "heard": "", "question": "", "choices": [], "language": language}

    def update(self, record: dict[str, Any]) -> Optional[str]:
        """Apply one bus record; the new state as a JSON message, or None when nothing shown changed."""
        name = record.get("event")
        if name not in SHOWN:
            return None
        d = self.data
        if name == "session_start":
            d["language"] = record.get("language", d["language"])
        elif name in ("listening", "speech_start"):
            d["face"] = "listening"
        elif name == "heard":
            d["heard"], d["face"] = record["text"], "thinking"
        elif name == "turn_start":
            d["face"] = "thinking"
            if not d["heard"]:
                d["heard"] = record["text"]  # typed in --text mode
        elif name == "speak_start":
            d["previous"] = d["sentence"] if d["sentence"] != record["text"] else d["previous"]
            d["sentence"], d["word"], d["face"] = record["text"], -1, "speaking"
        elif name == "word":
            if record["sentence"] == d["sentence"]:
                d["word"] = record["index"]
        elif name in ("speak_end", "speak_stopped"):
            d["word"] = -1 if name == "speak_stopped" else d["word"]
        elif name == "turn_end":
            d["face"], d["heard"] = "idle", ""
        elif name == "question":
            d["question"], d["choices"] = record["text"], []
        elif name == "answer_judged":
            if not record.get("hint"):
                d["question"] = ""
        elif name == "choice":
            d["choices"] = []
        elif name == "error":
            d["face"] = "idle"
        return self.message()

    def message(self) -> str:
        """The whole state as one JSON text message."""
        return json.dumps(self.data, ensure_ascii=False)
