"""One exception type per stage; each message says what went wrong and how to fix it."""


class StorytellerAppError(Exception):
    """Base of every error the app reports to the user in one line."""

    exit_code = 1


class ConfigError(StorytellerAppError):
    """config.yaml or a command-line override is invalid."""

    exit_code = 2


class ModelError(StorytellerAppError):
    """The language model could not be found, loaded or run."""


class SpeechError(StorytellerAppError):
    """Text-to-speech or audio output failed."""


class ListenError(StorytellerAppError):
    """Microphone capture, voice activity detection or transcription failed."""


class MicrophoneError(ListenError):
    """The microphone could not be opened or stopped delivering audio."""


class SinkError(StorytellerAppError):
    """A record of the session (the events file, the wav recording) could not be written."""
