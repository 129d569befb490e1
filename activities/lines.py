"""What the storyteller says during questions and choices, per language."""

from __future__ import annotations

PRAISE = {
    "en": ("Yes! That's right, well done!", "Great listening! That's it!", "You got it! Wonderful!"),
    "fr": ("Oui ! C'est ça, bravo !", "Super écoute ! C'est exactement ça !", "Tu as trouvé ! Génial !"),
    "de": ("Ja! Richtig, toll gemacht!", "Super zugehört! Genau!", "Du hast es! Wunderbar!"),
}
HINT = {  # after a first wrong answer: a clue and one more try
    "en": "Good try! Here's a little clue: {hint} What do you think?",
    "fr": "Bien essayé ! Un petit indice : {hint} Qu'en penses-tu ?",
    "de": "Guter Versuch! Ein kleiner Tipp: {hint} Was meinst du?",
}
DONT_KNOW_HINT = {  # "I don't know" or silence the first time: warmth, then a clue
    "en": "That's okay! Here's a little clue: {hint} Want to guess?",
    "fr": "Ce n'est pas grave ! Un petit indice : {hint} Tu veux deviner ?",
    "de": "Das macht nichts! Ein kleiner Tipp: {hint} Magst du raten?",
}
TELL = {  # the second miss: the answer, kindly
    "en": "Nice try! The answer was: {answer}.",
    "fr": "Bien essayé ! La réponse était : {answer}.",
    "de": "Schön versucht! Die Antwort war: {answer}.",
}
INTRO = {
    "en": "Now I have a question for you!",
    "fr": "Maintenant, j'ai une question pour toi !",
    "de": "Jetzt habe ich eine Frage für dich!",
}
NO_STORY = {
    "en": "Let's have a story first, then I'll ask you about it! What should it be about?",
    "fr": "D'abord une histoire, et ensuite je te poserai des questions ! Elle parle de quoi ?",
    "de": "Zuerst eine Geschichte, dann stelle ich dir Fragen dazu! Worum soll es gehen?",
}
NO_QUESTION = {
    "en": "Hmm, I can't think of a good question about that one. Shall I tell you another story?",
    "fr": "Hmm, je ne trouve pas de bonne question sur celle-là. Tu veux une autre histoire ?",
    "de": "Hmm, mir fällt dazu keine gute Frage ein. Soll ich dir noch eine Geschichte erzählen?",
}
DONE = {
    "en": "That was fun! You listened so well. Would you like another story?",
    "fr": "C'était amusant ! Tu as très bien écouté. Tu veux une autre histoire ?",
    "de": "Das hat Spaß gemacht! Du hast so gut zugehört. Möchtest du noch eine Geschichte?",
}
STOPPED = {
    "en": "Okay, no more questions for now!",
    "fr": "D'accord, plus de questions pour l'instant !",
    "de": "Okay, jetzt keine Fragen mehr!",
}
REASK_CHOICE = {
    "en": "Hmm, which one: {a}, or {b}?",
    "fr": "Hmm, lequel : {a}, ou {b} ?",
    "de": "Hmm, was denn: {a}, oder {b}?",
}
STORY_PICKS = {
    "en": "Let's say: {choice}!",
    "fr": "Disons : {choice} !",
    "de": "Sagen wir: {choice}!",
}
CHILD_PICKED = {
    "en": "Good choice: {choice}!",
    "fr": "Bon choix : {choice} !",
    "de": "Gute Wahl: {choice}!",
}
# Fallback question when the model gives none in the expected form: who the story was about.
WHO = {
    "en": ("Who was the story about?", "It starts with the letter {letter}."),
    "fr": ("De qui parlait l'histoire ?", "Ça commence par la lettre {letter}."),
    "de": ("Um wen ging es in der Geschichte?", "Es fängt mit dem Buchstaben {letter} an."),
}
