"""One turn from the child's words to the storyteller's sentences, announced on the event bus."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Protocol

from events import ErrorEvent, EventBus, SentenceReady, TurnEnd, TurnStart
from errors import StorytellerAppError
from llm.storyteller import FirstToken, ReplyDone, Sentence, Storyteller, TurnPlan

if TYPE_CHECKING:
    from audio.listen import Listener

log = logging.getLogger(__name__)

# What the child hears when a turn fails, so silence never means "it's broken".
SORRY = {
    "en": "Oops, my story book got stuck. Can you ask me again?",
    "fr": "Oups, mon livre d'histoires s'est coincé. Tu peux me redemander ?",
    "de": "Hoppla, mein Geschichtenbuch klemmt. Kannst du mich noch einmal fragen?",
}


class Voice(Protocol):
    """What the session needs of the speaker (audio.speak.Speaker)."""

    def say(self, text: str) -> None: ...
    def stop(self) -> None: ...
    def wait_idle(self, timeout: Optional[float] = None) -> bool: ...


class Session:
    """Runs turns one after another: each sentence is shown (printed) and, with a speaker, spoken."""

    def __init__(self, storyteller: Storyteller, bus: EventBus, show: Callable[[str], None], speaker: Optional[Voice] = None):
        self.storyteller, self.bus, self.show, self.speaker = storyteller, bus, show, speaker
        self.turns = 0

    def say(self, text: str) -> None:
        """Show a sentence and queue it for speech; the model goes on writing meanwhile."""
        self.show(text)
        if self.speaker:
            self.speaker.say(text)

    def run_turn(self, child_text: str, cancel: Optional[threading.Event] = None) -> Optional[TurnEnd]:
        """Answer one turn; a failing model is reported and apologised for, never fatal."""
        cancel = cancel or threading.Event()
        self.turns += 1
        turn, t0 = self.turns, time.monotonic()
        first_token = first_sentence = None
        count = 0
        try:
            for item in self.storyteller.stream(child_text, cancel):
                if isinstance(item, TurnPlan):
                    self.bus.emit(TurnStart(turn=turn, text=child_text, mode=item.mode.value))
                elif isinstance(item, FirstToken):
                    first_token = time.monotonic() - t0
                elif isinstance(item, Sentence):
                    first_sentence = first_sentence if first_sentence is not None else time.monotonic() - t0
                    count += 1
                    self.bus.emit(SentenceReady(turn=turn, index=item.index, text=item.text))
                    self.say(item.text)
                elif isinstance(item, ReplyDone):
                    end = TurnEnd(
                        turn=turn,
                        sentences=count,
                        tokens=item.tokens,
                        cancelled=item.cancelled,
                        first_token_s=_round(first_token),
                        first_sentence_s=_round(first_sentence),
                        total_s=round(time.monotonic() - t0, 4),
                    )
                    self.bus.emit(end)
                    self._finish_speech(cancel)
                    return end
        except StorytellerAppError as err:
            log.error("%s", err)
            self.bus.emit(ErrorEvent(stage="llm", message=str(err)))
            self.say(SORRY.get(self.storyteller.language, SORRY["en"]))
            self._finish_speech(cancel)
        return None

    def _finish_speech(self, cancel: threading.Event) -> None:
        """A cancelled turn goes silent at once; otherwise the turn ends when its speech does."""
        if not self.speaker:
            return
        if cancel.is_set():
            self.speaker.stop()
        else:
            self.speaker.wait_idle()

    def run_recording(self, listener: "Listener", path: str) -> None:
        """--input-wav: one turn from a recording, through the same VAD and Whisper path as the microphone."""
        from audio.listen import wav_frames

        heard = listener.listen(wav_frames(path), threading.Event())
        if heard:
            self.run_turn(heard.text)

    def run_voice(self, listener: "Listener", input_device, stop: threading.Event) -> None:
        """Hands-free: listen, answer, speak, listen again, until stop is set.

        Half-duplex: what the microphone picked up while the app spoke is dropped before listening again.
        """
        from audio.listen import Microphone

        mic = Microphone(input_device)
        mic.open()
        log.info("listening (Ctrl-C to end)")
        try:
            while not stop.is_set():
                heard = listener.listen(mic.read(stop), stop)
                if heard:
                    self.run_turn(heard.text, stop)
                    mic.drain()
        finally:
            mic.close()

    def run_text(self, lines: Iterable[str], stop: threading.Event) -> None:
        """The --text loop: one line a turn until the input ends or stop is set."""
        for line in lines:
            if stop.is_set():
                break
            if line.strip():
                self.run_turn(line.strip(), stop)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)
