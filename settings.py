"""Typed, validated, frozen settings, read once from config.yaml and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

import lang
from errors import ConfigError

AGE_GROUPS = ("Toddlers", "Preschoolers", "Early Elementary", "Late Elementary", "Preteens")
LANGUAGES = lang.CODES  # every language with a file in lang/: a new file adds one


def _check_access(value: Any, field: str) -> Any:
    """A token long enough to guess at no better than chance, origins written as browsers send them."""
    if field.endswith("token") and value is not None:
        if len(value) < 16 or not re.fullmatch(r"[A-Za-z0-9_.~-]+", value):
            raise ValueError("must be 16 or more characters of A-Z a-z 0-9 _ . ~ - (got a shorter or other one); "
                             "python -c 'import secrets; print(secrets.token_urlsafe(16))' makes one")
    if field.endswith("origins"):
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"each must be scheme://host[:port] with no path or trailing slash, "
                                 f"as a browser sends it (got {origin!r})")
    return value


def check_language(value: str, also: tuple[str, ...] = ()) -> str:
    """A code with a file in lang/ (or one of `also`); else the one-line error naming the known ones."""
    if value not in LANGUAGES + also:
        raise ValueError(f"must be one of {', '.join(LANGUAGES + also)} (a language is a file in lang/; got {value!r})")
    return value


def normalize_age_group(value: str) -> str:
    """Accept 'early-elementary', 'EARLY_ELEMENTARY', ... and return the canonical name."""
    key = str(value).lower().replace("-", " ").replace("_", " ").strip()
    for name in AGE_GROUPS:
        if name.lower() == key:
            return name
    raise ValueError(f"must be one of {', '.join(AGE_GROUPS)} (got {value!r})")


class _Section(BaseModel):
    # extra="forbid": a misspelt key must fail at start-up, not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _yaml_off(cls, data: Any) -> Any:
        """YAML reads a bare `off` as false and `on` as true: give choices that spell them their word back."""
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and field.annotation is not bool:
                    word = "on" if value else "off"
                    if f"'{word}'" in repr(field.annotation):  # a Literal that has the word
                        data = {**data, key: word}
        return data


class LLMSettings(_Section):
    """Which language model tells the stories, and how it generates."""

    backend: Literal["local", "hf-inference", "llamacpp", "openai"] = "local"
    model: Literal["phi-ed", "starter", "custom"] = "phi-ed"
    base_model: Optional[str] = None
    adapter: Optional[str] = None
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    merge_adapter: bool = False
    quantization: Literal["q4_k_m", "q4_0", "q8_0", "f16"] = "q4_k_m"
    threads: Optional[int] = Field(None, ge=1, le=256)
    max_new_tokens: int = Field(300, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repetition_penalty: Optional[float] = Field(None, ge=1.0, le=2.0)
    # llama.cpp and vLLM take an unsigned 32-bit seed; a larger one would fail every turn.
    seed: Optional[int] = Field(None, ge=0, le=2**32 - 1)
    memory_tokens: int = Field(1500, ge=64)
    hf_model: str = "microsoft/Phi-3-mini-4k-instruct"
    hf_token_env: str = "HF_TOKEN"
    hf_base_url: Optional[str] = None
    timeout_s: float = Field(60.0, gt=0)
    server_url: Optional[str] = None
    server_model: str = "phi-ed"
    server_key_env: str = "OPENAI_API_KEY"
    retries: int = Field(3, ge=0, le=10)
    fallback_local: bool = False

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "mps") or v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps (got {v!r})")


class StorySettings(_Section):
    """Who the stories are for."""

    age_group: str = "Early Elementary"
    language: str = "en"  # a code with a file in lang/
    max_sentence_words: int = Field(30, ge=5, le=200)
    # The longest request a turn takes (a pasted page or a stuck key gets a kind "shorter, please").
    max_request_chars: int = Field(600, ge=20, le=20000)
    max_request_tokens: int = Field(200, ge=8, le=4096)
    # What the child asks (a new story, a recap, "say that again"...) is read by the meaning
    # classifier over the safety encoder's features, or by cue phrases alone (patterns).
    intent: Literal["meaning", "patterns"] = "meaning"

    @field_validator("age_group")
    @classmethod
    def _age(cls, v: str) -> str:
        return normalize_age_group(v)

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        return check_language(v)


# A voice per language (engine voice id, name or .onnx path); null picks one for the language.
# One field per language in lang/ (speech.voices.en, .fr, ...), so a new language file adds its own.
VoiceChoice = create_model("VoiceChoice", __base__=_Section, __doc__="A voice per language; null picks one for the language.",
                           **{code: (Optional[str], None) for code in LANGUAGES})


class SpeechSettings(_Section):
    """How the stories are spoken."""

    enabled: bool = True
    # true: at once; auto: only when the model's first sentence is not ready within 0.5 s (acknowledge.Pace)
    acknowledge: Union[Literal["auto"], bool] = "auto"
    engine: Literal["pyttsx3", "piper"] = "pyttsx3"
    voices: VoiceChoice = VoiceChoice()
    rate_wpm: int = Field(150, ge=60, le=400)
    # A slower pace for the youngest (words per minute, by age group); groups not named use rate_wpm.
    age_rates: dict[str, int] = {"Toddlers": 120, "Preschoolers": 135}
    volume: float = Field(1.0, ge=0.0, le=1.0)
    output_wav: Optional[str] = None

    @field_validator("age_rates")
    @classmethod
    def _age_rates(cls, v: dict[str, int]) -> dict[str, int]:
        out = {}
        for group, rate in v.items():
            if not 60 <= rate <= 400:
                raise ValueError(f"{group}: {rate} words per minute is outside 60-400")
            out[normalize_age_group(group)] = rate
        return out

    def rate_for(self, age_group: str) -> int:
        """The speaking pace for an age group."""
        return self.age_rates.get(age_group, self.rate_wpm)


class AudioSettings(_Section):
    """Which sound devices to use (PortAudio name or index; null: the system default)."""

    input_device: Optional[Union[int, str]] = None
    output_device: Optional[Union[int, str]] = None


class ListenSettings(_Section):
    """Hands-free listening: voice activity endpointing and Whisper."""

    stt_engine: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: str = "auto"
    language: Optional[str] = None  # null: story.language; a code with a file in lang/, or auto (detect)
    story_prompt: bool = True
    # Whisper's beam: 1 is greedy (fastest); more searches wider for the words (BENCHMARKS.md section 7).
    beam_size: int = Field(1, ge=1, le=10)
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    noise_margin_db: float = Field(6.0, ge=0.0, le=30.0)
    # Speech begins only this far above the room, then goes on at noise_margin_db (BENCHMARKS 9c).
    start_margin_db: float = Field(9.0, ge=0.0, le=40.0)
    pre_roll_s: float = Field(0.3, ge=0.0, le=2.0)
    min_speech_s: float = Field(0.25, ge=0.0, le=3.0)
    end_silence_s: float = Field(0.8, gt=0.0, le=5.0)
    # Words that cannot end a request ("a story about", "et", "mit", "um") keep the turn open this
    # much longer for the rest of it (0: off); end_silence_s + this is the longest pause waited.
    unfinished_hold_s: float = Field(1.7, ge=0.0, le=5.0)
    # A pause this long starts transcribing the turn so far; when those words are finished and the
    # pause goes on, the turn ends there, before end_silence_s (0: off, the turn ends at end_silence_s).
    probe_s: float = Field(0.1, ge=0.0, le=2.0)
    # A turn that ends on finished words plays the listening cue, and the child may go on this long
    # (s) and it is still one turn: Whisper mishears the last small word of a fragment as a finished one
    # (BENCHMARKS.md 7a); the turn is answered after it. Not for an answer to a question. 0: off.
    resume_s: float = Field(1.3, ge=0.0, le=5.0)
    # The sound's say at that pause: "smart-turn" (Smart Turn v3.2, packaged), a path to such an
    # .onnx, or off (the default: on synthetic child voices it only delayed turns, BENCHMARKS.md 7).
    # Finished words whose P(complete) is under turn_threshold wait, re-scored, up to end_silence_s;
    # 0 scores and reports it (speech_end.turn_p) without letting it decide.
    turn_model: str = "off"
    turn_threshold: float = Field(0.5, ge=0.0, le=1.0)
    # Finished words whose P(complete) is still under this at end_silence_s are held as open words are
    # (unfinished_hold_s); 0: the sound never holds a turn.
    turn_hold_below: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("language")
    @classmethod
    def _language(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else check_language(v, also=("auto",))

    @field_validator("turn_model", mode="before")
    @classmethod
    def _turn_model_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML's bare `off`
    max_utterance_s: float = Field(15.0, ge=1.0, le=120.0)
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)
    min_avg_logprob: float = Field(-1.5, le=0.0)
    max_compression_ratio: float = Field(2.4, gt=0.0)
    # A child's voice over the story stops it and is the next turn. auto: wherever the echo check at
    # start finds the speaker's echo cancelled (or not heard at all), else half-duplex ("stop" only).
    barge_in: Union[bool, Literal["auto"]] = "auto"
    # The speaker's own voice taken out of the microphone: "system" (PulseAudio's module-echo-cancel,
    # found running or loaded by the app over the default devices for the session; off with one line
    # where there is no PulseAudio), "webrtc" (WebRTC AEC3 in the app, with what the speaker played as
    # the reference; its first seconds still leak, README "Hearing over the story"), or off.
    echo_cancel: Literal["webrtc", "system", "off"] = "off"
    # The far end of echo_cancel: webrtc. monitor: the speaker's monitor as the sound server played it
    # (PulseAudio; where there is none, what the app writes); played: the blocks the app writes.
    echo_reference: Literal["monitor", "played"] = "monitor"
    # The sound server's noise suppressor on the microphone (echo_cancel: system only).
    noise_suppression: bool = False
    # Seconds of the speaker's sound the canceller adapts on before a voice may interrupt (stop always can).
    echo_settle_s: float = Field(1.0, ge=0.0, le=10.0)
    # ... and seconds of each new playback (after a second of quiet), on which AEC3 finds the echo again.
    echo_resettle_s: float = Field(0.8, ge=0.0, le=5.0)
    # The start-up check's short sound, and the verdict it gives barge_in: auto (off: trust the canceller).
    echo_check: bool = True

    @field_validator("echo_cancel", mode="before")
    @classmethod
    def _bare_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML's bare `off`


class EventSettings(_Section):
    """Where the event bus writes JSON lines (null: nowhere)."""

    path: Optional[str] = None
    websocket: bool = False
    websocket_host: str = "127.0.0.1"
    websocket_port: int = Field(8765, ge=0, le=65535)
    # Needed in the URL (?token=) by every client; off loopback one is made per run when unset.
    websocket_token: Optional[str] = None
    websocket_origins: tuple[str, ...] = ()  # browser pages allowed to connect, e.g. "http://tablet.local:8080"
    websocket_max_clients: int = Field(8, ge=1, le=256)

    @field_validator("websocket_token", "websocket_origins")
    @classmethod
    def _access(cls, value: Any, info: Any) -> Any:
        return _check_access(value, info.field_name)


class ScreenSettings(_Section):
    """The read-along screen served by the app (open it full-screen in a kiosk browser)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8770, ge=0, le=65535)
    token: Optional[str] = None  # as events.websocket_token, for the page's /ws (open /?token=...)
    origins: tuple[str, ...] = ()  # other pages allowed to read the state, besides the screen's own
    max_clients: int = Field(8, ge=1, le=256)

    @field_validator("token", "origins")
    @classmethod
    def _access(cls, value: Any, info: Any) -> Any:
        return _check_access(value, info.field_name)


class ActivitySettings(_Section):
    """Story time that teaches: comprehension questions and choice points."""

    questions: Literal["on_request", "after_story", "off"] = "on_request"
    max_questions: int = Field(3, ge=1, le=5)
    choices: bool = False
    answer_timeout_s: float = Field(8.0, ge=2.0, le=60.0)
    summary_path: Optional[str] = None
    # Sessions older than this are dropped from the summary at start-up (the retention policy).
    summary_keep_days: int = Field(30, ge=1, le=3650)


class SafetySettings(_Section):
    """Child safety beyond the built-in rules (which always run; see README, "Child safety")."""

    classifier: Optional[str] = None
    classifier_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    meaning: Literal["off", "input", "all"] = "all"
    self_check: Literal["auto", "on", "off"] = "auto"
    guard_model: Optional[str] = None
    steer_retries: int = Field(1, ge=0, le=3)


class PrivacySettings(_Section):
    """What is kept about the children (audio never is)."""

    keep_transcripts: bool = False


class SessionSettings(_Section):
    """A kiosk many children share: when one child's session ends and the next begins afresh."""

    # This long with no one speaking ends the session: memory, caches, activities and screen are
    # cleared, so the next child never hears the last one's story. 0: only the teacher's "next child".
    idle_reset_s: float = Field(120.0, ge=0.0, le=86400.0)


class TeacherSettings(_Section):
    """The teacher's page: pause, next child, age group, language, voice, volume, questions, the summary."""

    enabled: bool = False
    host: str = "127.0.0.1"  # 0.0.0.0: open it from a tablet on the school network
    port: int = Field(8771, ge=0, le=65535)
    pin: Optional[str] = None  # required: the page never opens without one
    origins: tuple[str, ...] = ()  # other pages allowed to connect (the page's own are always allowed)

    @field_validator("pin", mode="before")
    @classmethod
    def _pin(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, str):
            raise ValueError('must be text: quote it, e.g. pin: "0472" (a number would lose its leading zeros)')
        if v is not None and (len(v) < 4 or v != v.strip()):
            raise ValueError("must be at least 4 characters, with no spaces around it")
        return v

    @model_validator(mode="after")
    def _needs_pin(self) -> "TeacherSettings":
        if self.enabled and not self.pin:
            raise ValueError('the teacher\'s page needs a PIN: set teacher.pin (e.g. pin: "0472"), or teacher.enabled: false')
        return self


class Settings(_Section):
    """All settings of the app."""

    llm: LLMSettings = LLMSettings()
    story: StorySettings = StorySettings()
    speech: SpeechSettings = SpeechSettings()
    listen: ListenSettings = ListenSettings()
    audio: AudioSettings = AudioSettings()
    events: EventSettings = EventSettings()
    activities: ActivitySettings = ActivitySettings()
    screen: ScreenSettings = ScreenSettings()
    safety: SafetySettings = SafetySettings()
    privacy: PrivacySettings = PrivacySettings()
    session: SessionSettings = SessionSettings()
    teacher: TeacherSettings = TeacherSettings()

    def with_overrides(self, **sections: dict[str, Any]) -> "Settings":
        """Return a copy with some keys of some sections replaced, validated again."""
        data = self.model_dump()
        for section, values in sections.items():
            data[section].update({k: v for k, v in values.items() if v is not None})
        return _validate(data, "command line")


def _describe(err: ValidationError, source: str) -> str:
    """Turn pydantic's first complaint into one line naming the key and what is allowed."""
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        parent: Any = Settings
        for part in e["loc"][:-1]:
            parent = parent.model_fields[str(part)].annotation
        allowed = ", ".join(parent.model_fields)
        return f"{source}: unknown key '{key}'; allowed here: {allowed}"
    msg = e["msg"].removeprefix("Value error, ")
    got = e.get("input")
    suffix = "" if "got" in msg or isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {key}: {msg}{suffix}"


def _validate(data: Any, source: str) -> Settings:
    try:
        return Settings.model_validate(data or {})
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from err


def load_settings(path: str | Path) -> Settings:
    """Read and validate a YAML config; missing keys take their defaults."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {path} (pass --config PATH)") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from err
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (llm:, story:, ...)")
    settings = _validate(data, str(path))
    updates: dict[str, Any] = {"llm": _resolve_paths(settings.llm, path.parent)}
    classifier = settings.safety.classifier
    if classifier and (classifier.startswith(".") or (path.parent / classifier).exists()):
        updates["safety"] = settings.safety.model_copy(update={"classifier": str((path.parent / classifier).resolve())})
    return settings.model_copy(update=updates)


def _resolve_paths(llm: LLMSettings, base: Path) -> LLMSettings:
    """Make relative model paths relative to the config file, so configs can move with their models."""
    updates = {}
    for key in ("base_model", "adapter"):
        value = getattr(llm, key)
        if value and (value.startswith(".") or (base / value).exists()):
            updates[key] = str((base / value).resolve())
    return llm.model_copy(update=updates)
