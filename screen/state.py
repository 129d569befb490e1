"""What the screen shows, kept from the event stream: a pure object, so a new or reconnected page catches up."""

from __future__ import annotations

import json
from typing import Any, Optional

from events import (AnswerJudged, BlockedEvent, ChoiceMade, ErrorEvent, Event, Heard, Listening, QuestionAsked,
                    SessionStart, SpeakEnd, SpeakStart, SpeakStopped, SpeechStart, TeacherAction, TurnEnd, TurnStart,
                    WordSpoken)


class ScreenState:
    """The current face (listening, thinking, speaking), sentence, lit word, what the child said, the question."""

    def __init__(self, language: str = "en"):
        self.data: dict[str, Any] = {"type": "state", "face": "idle", "sentence": "", "previous": "", "word": -1,
                                     "heard": "", "question": "", "language": language}
        # What the child said is shown only once the safety check has seen it (its `blocked`
        # event, if any, comes before `turn_start`), and then masked where it was unsafe.
        self._heard = ""

    def update(self, event: Event) -> Optional[str]:
        """Apply one event from the bus; the new state as a JSON message, or None when nothing shown changed."""
        d = self.data
        match event:
            case TeacherAction(action="language", ok=True, value=value):
                d["language"] = value or d["language"]  # the page's own words follow the kiosk's language
            case SessionStart(language=language):
                # A new child's session: nothing of the last child's stays on the screen.
                d.update(face="idle", sentence="", previous="", word=-1, heard="", question="", language=language)
                self._heard = ""
            case Listening() | SpeechStart():
                d["face"] = "listening"
            case Heard(text=text):
                self._heard, d["face"] = text, "thinking"
            case BlockedEvent(stage="input", masked=masked):
                self._heard = masked
            case TurnStart(text=text):
                d["face"], d["heard"] = "thinking", self._heard or text
                self._heard = ""
            case SpeakStart(text=text):
                d["previous"] = d["sentence"] if d["sentence"] != text else d["previous"]
                d["sentence"], d["word"], d["face"] = text, -1, "speaking"
            case WordSpoken(sentence=sentence, index=index):
                if sentence == d["sentence"]:
                    d["word"] = index
            case SpeakEnd():
                pass  # the lit word stays on the last one; the state is sent all the same
            case SpeakStopped():
                d["word"] = -1
            case TurnEnd():
                d["face"], d["heard"] = "idle", ""
            case QuestionAsked(text=text):
                d["question"], d["choices"] = text, []
            case AnswerJudged(hint=hint):
                if not hint:
                    d["question"] = ""
            case ChoiceMade():
                d["question"] = ""
            case ErrorEvent():
                d["face"] = "idle"
            case _:  # not shown (timings, the acknowledgement, other teacher actions, ...): not sent
                return None
        return self.message()

    def message(self) -> str:
        """The whole state as one JSON text message."""
        return json.dumps(self.data, ensure_ascii=False)
