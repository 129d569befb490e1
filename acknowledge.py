"""Instant acknowledgements: a short friendly line the moment a turn ends, while the model starts."""

from __future__ import annotations

import random
from typing import Optional

from llm.prompts import Mode

LINES = {
    "en": {
        Mode.NEW_STORY: ["Ooh, I love that idea! Let me think...", "What a great idea! Here comes a story...",
                         "Hmm, let me find a good one...", "Oh, wonderful! Let me think..."],
        Mode.CONTINUE: ["Let's see what happens next...", "Ooh, what happens now? Let me think...",
                        "The story goes on..."],
        Mode.CHANGE: ["Ooh, a new twist! Let me think...", "Good idea, let's change it..."],
        Mode.QUESTION: ["Good question! Let me think...", "Hmm, let me think about that..."],
        Mode.CHOICE: ["Let's see where that leads...", "Ooh, here we go..."],
        Mode.RECAP: ["Let me remind you...", "Let's remember the story together..."],
        Mode.RETELL: ["Let's hear it again!", "Again? I'd love to..."],
        Mode.LESSON: ["Ooh, let's learn about that!", "What a great thing to learn about..."],
    },
    "fr": {
        Mode.NEW_STORY: ["Oh, j'adore cette idée ! Je réfléchis...", "Quelle bonne idée ! Voici une histoire...",
                         "Hmm, je cherche une belle histoire..."],
        Mode.CONTINUE: ["Voyons ce qui se passe ensuite...", "Et maintenant ? Je réfléchis..."],
        Mode.CHANGE: ["Oh, une nouvelle idée ! Je réfléchis...", "D'accord, on change l'histoire..."],
        Mode.QUESTION: ["Bonne question ! Je réfléchis...", "Hmm, laisse-moi réfléchir..."],
        Mode.CHOICE: ["Voyons où ça nous mène...", "Oh, c'est parti..."],
        Mode.RECAP: ["Je te rappelle...", "Souvenons-nous de l'histoire..."],
        Mode.RETELL: ["On la réécoute !", "Encore ? Avec plaisir..."],
        Mode.LESSON: ["Oh, apprenons ça ensemble !", "Quelle belle chose à apprendre..."],
    },
    "de": {
        Mode.NEW_STORY: ["Oh, tolle Idee! Lass mich überlegen...", "Wie schön! Gleich kommt eine Geschichte...",
                         "Hmm, ich suche eine schöne Geschichte..."],
        Mode.CONTINUE: ["Mal sehen, wie es weitergeht...", "Und was passiert jetzt? Lass mich überlegen..."],
        Mode.CHANGE: ["Oh, eine neue Idee! Lass mich überlegen...", "Gut, wir ändern die Geschichte..."],
        Mode.QUESTION: ["Gute Frage! Lass mich überlegen...", "Hmm, lass mich nachdenken..."],
        Mode.CHOICE: ["Mal sehen, wohin das führt...", "Oh, los geht's..."],
        Mode.RECAP: ["Ich erinnere dich...", "Weißt du noch? Pass auf..."],
        Mode.RETELL: ["Nochmal? Sehr gern!", "Hören wir sie nochmal..."],
        Mode.LESSON: ["Oh, das lernen wir zusammen!", "Wie spannend, darüber zu lernen..."],
    },
}


class Acknowledger:
    """Picks a line for the mode and language, never the same one twice in a row."""

    def __init__(self, language: str, rng: Optional[random.Random] = None):
        self.lines = LINES.get(language, LINES["en"])
        self.rng = rng or random.Random()
        self.last: Optional[str] = None

    def all_lines(self) -> list[str]:
        """Every line it may say (so a speaker can make them ahead)."""
        return [line for lines in self.lines.values() for line in lines]

    def use_language(self, language: str) -> None:
        """Speak another language from now on (the teacher changed it)."""
        self.lines = LINES.get(language, LINES["en"])

    def line(self, mode: Mode) -> Optional[str]:
        """A short friendly line for this kind of turn; None where none fits (a repeat is said at once)."""
        if mode not in self.lines:
            return None
        choices = [line for line in self.lines[mode] if line != self.last] or self.lines[mode]
        self.last = self.rng.choice(choices)
        return self.last
