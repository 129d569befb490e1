"""What the storyteller says instead: gentle redirects, a privacy reminder, a kind ending, per language."""

from __future__ import annotations

import random

# Safe story topics offered in a redirect; the model then tells a story about one of them.
TOPICS = {
    "en": ("a little fox who finds a glowing stone", "a penguin who wants to fly", "a snail who races a rabbit",
           "a cloud who is afraid of nothing", "a kind dragon who bakes cookies", "a lost button that finds its coat"),
    "fr": ("un petit renard qui trouve une pierre brillante", "un pingouin qui veut voler", "un escargot qui fait la course avec un lapin",
           "un gentil dragon qui fait des biscuits", "un bouton perdu qui retrouve son manteau"),
    "de": ("einen kleinen Fuchs, der einen leuchtenden Stein findet", "einen Pinguin, der fliegen möchte",
           "eine Schnecke, die mit einem Hasen um die Wette läuft", "einen freundlichen Drachen, der Kekse backt",
           "einen verlorenen Knopf, der seinen Mantel wiederfindet"),
}

# Said when a request is not for a children's story: no lecture, just a warm turn elsewhere.
REDIRECT = {
    "en": "Hmm, let's pick a different adventure! Here is a story about {topic}.",
    "fr": "Hmm, choisissons une autre aventure ! Voici une histoire sur {topic}.",
    "de": "Hmm, lass uns ein anderes Abenteuer aussuchen! Hier ist eine Geschichte über {topic}.",
}
# The model is asked for this instead of what the child asked.
REDIRECT_REQUEST = {
    "en": "Tell me a story about {topic}.",
    "fr": "Raconte-moi une histoire sur {topic}.",
    "de": "Erzähl mir eine Geschichte über {topic}.",
}

# A child who speaks of hurting themselves hears care and a grown-up to turn to, not a story.
SELF_HARM = {
    "en": "That sounds like a really big feeling. Please tell a grown-up you trust, like your teacher or your family, right now. "
          "I'm here for a calm, cosy story whenever you want one.",
    "fr": "Ça a l'air d'être un très gros sentiment. S'il te plaît, parles-en tout de suite à un adulte de confiance, "
          "comme ta maîtresse ou ta famille. Je suis là pour une histoire douce quand tu veux.",
    "de": "Das klingt nach einem ganz großen Gefühl. Bitte erzähl es sofort einem Erwachsenen, dem du vertraust, "
          "zum Beispiel deiner Lehrerin oder deiner Familie. Ich bin für eine ruhige, gemütliche Geschichte da, wann immer du willst.",
}

# A child who tells of harm (abuse, neglect, bullying) hears thanks, care and a grown-up to tell
# today, never a story; the teacher gets a `safeguarding` event.
CARE = {
    "en": "Thank you for telling me. That sounds really hard. Please tell a grown-up you trust, like your teacher, today.",
    "fr": "Merci de me l'avoir dit. Ça a l'air vraiment difficile. S'il te plaît, parles-en aujourd'hui à un adulte "
          "de confiance, comme ta maîtresse.",
    "de": "Danke, dass du mir das erzählst. Das klingt wirklich schwer. Bitte erzähl es heute einem Erwachsenen, "
          "dem du vertraust, zum Beispiel deiner Lehrerin.",
}

# Personal information is taken out of the request; the child hears why, kindly, and the story goes on.
PRIVACY = {
    "en": "Let's keep things like names, addresses and phone numbers secret, just for you and your family.",
    "fr": "Gardons les noms, les adresses et les numéros de téléphone secrets, rien que pour toi et ta famille.",
    "de": "Namen, Adressen und Telefonnummern behalten wir lieber geheim, nur für dich und deine Familie.",
}

# Ends a story whose next sentence was blocked twice: a kind close instead of silence.
CLOSING = {
    "en": "And so everyone got home safe and sound, had a warm cup of cocoa, and slept happily. The end.",
    "fr": "Et c'est ainsi que tout le monde rentra sain et sauf, but un bon chocolat chaud et dormit heureux. Fin.",
    "de": "Und so kamen alle heil und gesund nach Hause, tranken einen warmen Kakao und schliefen glücklich ein. Ende.",
}

# Sent to the model to steer a story back after a blocked sentence (the instructions are in
# English like the system prompt; the system prompt already fixes the language of the reply).
STEER = (
    "Go on with the story from where it stopped, gently and kindly, as suitable for {age}. "
    "Leave out anything frightening, hurtful or unsafe for a child."
)


def redirect(language: str, rng: random.Random) -> tuple[str, str]:
    """A redirect line for the child and the safe request sent to the model in its place."""
    topic = rng.choice(TOPICS[language])
    return REDIRECT[language].format(topic=topic), REDIRECT_REQUEST[language].format(topic=topic)
