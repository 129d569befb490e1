"""The teacher's controls, applied to the running kiosk at once: pause, next child, age group, language, voice, volume, questions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

import lang
from events import TeacherAction

if TYPE_CHECKING:
    from audio.listen import Listener
    from audio.tts import Synthesizer
    from pipeline import Session

log = logging.getLogger(__name__)


class KioskControls:
    """What the teacher's page may change, and the state it shows; every change is announced on the bus.

    `make_voice(language, voice, age_group)` builds a synthesizer (None: speech is off; voice None:
    the configured one). The volume takes effect at once, a voice from the next sentence made, the
    age group, language and questions from the next turn.
    """

    def __init__(self, session: "Session", make_voice: Optional[Callable[[str, Optional[str], str], "Synthesizer"]] = None,
                 summary_text: Optional[Callable[[], str]] = None):
        self.session = session
        self.make_voice = make_voice
        self.summary_text = summary_text
        self.listener: Optional["Listener"] = None  # set once listening starts (hands-free only)
        self.voice: Optional[str] = None  # None: the configured voice for the language
        self._voice_list: dict[str, list[str]] = {}  # per language: status() must be quick (it runs under the page's lock)

    def status(self) -> dict[str, Any]:
        """What the teacher's page shows."""
        s = self.session
        speaker = s.speaker
        acts = s.stages.activities
        return {"paused": s.paused.is_set(), "age_group": s.storyteller.age_group, "language": s.storyteller.language,
                "voice": self.voice, "voices": self._voices(), "volume": round(speaker.gain, 2) if speaker else None,
                "questions": acts.questions_mode if acts else "off", "session": s.session,
                "summary": self.summary_text() if self.summary_text else "No summary is kept (activities.summary_path)."}

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one validated command ({"action", "value"}); returns {"ok", "message"}."""
        action, value = command["action"], command.get("value")
        try:
            ok, message = getattr(self, f"_{action}")(value)
        except Exception as err:  # noqa: BLE001 - a failed change leaves the kiosk as it was
            log.exception("teacher: %s failed", action)
            ok, message = False, f"{action} failed: {err}"
        self.session.stages.bus.emit(TeacherAction(action=action, value=None if value is None else str(value), ok=ok, message=message))
        log.info("teacher: %s", message)
        return {"ok": ok, "message": message}

    def _pause(self, _: Any) -> tuple[bool, str]:
        self.session.pause()
        return True, "Paused: the kiosk is quiet and does not answer"

    def _resume(self, _: Any) -> tuple[bool, str]:
        self.session.resume()
        return True, "Listening again"

    def _next_child(self, _: Any) -> tuple[bool, str]:
        self.session.new_session("teacher")
        return True, f"A fresh start for the next child (session {self.session.session})"

    def _age_group(self, value: str) -> tuple[bool, str]:
        # The voice is made again first: its pace follows the age group (speech.age_rates), and a
        # voice that cannot be made leaves everything as it was.
        synth = self._new_voice(self.session.storyteller.language, self.voice, value)
        self._audience(value, self.session.storyteller.language)
        if synth is not None:
            self.session.speaker.synth = synth
        return True, f"Age group is now {value}"

    def _language(self, value: str) -> tuple[bool, str]:
        synth = self._new_voice(value, None, self.session.storyteller.age_group)  # first: it may fail
        self._audience(self.session.storyteller.age_group, value)
        if synth is not None:
            self.voice = None
            self.session.speaker.synth = synth
        note = ""
        transcriber = getattr(self.listener, "transcriber", None)
        if transcriber is not None:
            model = str(getattr(transcriber, "model_name", ""))
            if model.endswith(".en") and value != "en":
                note = f"; listening stays English (listen.model {model} is English-only: set listen.model: base and restart)"
            else:
                transcriber.language = value
                if transcriber.prompt:
                    transcriber.prompt = lang.get(value).story_prompt
        return True, f"Language is now {value}{note}"

    def _voice(self, value: str) -> tuple[bool, str]:
        if not (self.make_voice and self.session.speaker):
            return False, "Speech is off: there is no voice to change"
        self.session.speaker.synth = self.make_voice(self.session.storyteller.language, value, self.session.storyteller.age_group)
        self.voice = value
        return True, f"Voice is now {value}"

    def _volume(self, value: float) -> tuple[bool, str]:
        if not self.session.speaker:
            return False, "Speech is off: there is no volume to change"
        self.session.speaker.gain = float(value)
        return True, f"Volume is now {round(float(value) * 100)} %"

    def _questions(self, value: str) -> tuple[bool, str]:
        if self.session.stages.activities is None:
            return False, "Activities are off in this configuration"
        self.session.stages.activities.questions_mode = value
        return True, f"Questions: {value.replace('_', ' ')}"

    def _new_voice(self, language: str, voice: Optional[str], age_group: str) -> Optional["Synthesizer"]:
        """A synthesizer for the language, voice and age group's pace; None when speech is off."""
        if not (self.make_voice and self.session.speaker):
            return None
        return self.make_voice(language, voice, age_group)

    def _audience(self, age_group: str, language: str) -> None:
        """The storyteller, the safety checks, the activities and the courtesy lines follow the new audience."""
        self.session.set_audience(age_group, language)

    def _voices(self) -> list[str]:
        speaker, language = self.session.speaker, self.session.storyteller.language
        if speaker is None:
            return []
        if language not in self._voice_list:
            try:
                found = [v.id for v in speaker.synth.voices()
                         if not v.languages or any(lang.startswith(language) for lang in v.languages)][:50]
            except Exception:  # noqa: BLE001 - a list of voices is a nicety
                found = []
            self._voice_list[language] = found
        return self._voice_list[language]

