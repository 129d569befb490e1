"""What the screen shows, kept from the event stream: a pure object, so a new or reconnected page catches up."""

from __future__ import annotations

import json
from typing import Any, Optional

# Events that change what the screen shows; the rest (timings, turn_end details) are not sent.
SHOWN = {"session_start", "teacher", "listening", "speech_start", "heard", "turn_start", "blocked", "speak_start", "word",
         "speak_end", "speak_stopped", "turn_end", "question", "answer_judged", "choice", "error"}


class ScreenState:
    """The current face (listening, thinking, speaking), sentence, lit word, what the child said, the question."""

    def __init__(self, language: str = "en"):
        self.data: dict[str, Any] = {"type": "state", "face": "idle", "sentence": "", "previous": "", "word": -1,
                                     "heard": "", "question": "", "language": language}
        # What the child said is shown only once the safety check has seen it (its `blocked`
        # event, if any, comes before `turn_start`), and then masked where it was unsafe.
        self._heard = ""

    def update(self, record: dict[str, Any]) -> Optional[str]:
        """Apply one bus record; the new state as a JSON message, or None when nothing shown changed."""
        name = record.get("event")
        if name not in SHOWN:
            return None
        d = self.data
        if name == "teacher":
            if record.get("action") != "language" or not record.get("ok"):
                return None
            d["language"] = record.get("value") or d["language"]  # the page's own words follow the kiosk's language
        elif name == "session_start":
            # A new child's session: nothing of the last child's stays on the screen.
            d.update(face="idle", sentence="", previous="", word=-1, heard="", question="",
                     language=record.get("language", d["language"]))
            self._heard = ""
        elif name in ("listening", "speech_start"):
            d["face"] = "listening"
        elif name == "heard":
            self._heard, d["face"] = record["text"], "thinking"
        elif name == "blocked":
            if record["stage"] != "input":
                return None
            self._heard = record["masked"]
        elif name == "turn_start":
            d["face"], d["heard"] = "thinking", self._heard or record["text"]
            self._heard = ""
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
            d["question"] = ""
        elif name == "error":
            d["face"] = "idle"
        return self.message()

    def message(self) -> str:
        """The whole state as one JSON text message."""
        return json.dumps(self.data, ensure_ascii=False)
