"""Voice storyteller for children: command line, building the app from settings, exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from errors import StorytellerAppError
from events import EventBus, JsonLinesSink, SessionStart
from settings import AGE_GROUPS, LANGUAGES, Settings, load_settings

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
    p.add_argument("-v", "--verbose", action="store_true", help="log details (timings, model loading)")
    return p.parse_args(argv)


def build_settings(args: argparse.Namespace) -> Settings:
    """config.yaml, then the command-line overrides, validated together."""
    settings = load_settings(args.config)
    return settings.with_overrides(
        story={"age_group": args.age_group, "language": args.language},
        events={"path": args.events},
    )


def _quiet_libraries() -> None:
    # Harmless notices from peft/transformers that would bury the story on the console.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*generation flags are not valid.*")
    for name in ("transformers", "peft", "huggingface_hub", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run(args: argparse.Namespace) -> int:
    """Build everything from settings and run the session; returns the exit code."""
    settings = build_settings(args)
    bus = EventBus()
    sink = JsonLinesSink(settings.events.path) if settings.events.path else None
    if sink:
        bus.subscribe(sink)
    try:
        from llm.backends import create_backend
        from llm.storyteller import Storyteller
        from pipeline import Session

        log.info("loading the storyteller model...")
        backend = create_backend(settings.llm)
        log.info("model: %s", backend.description)
        if not backend.fine_tuned:
            log.warning("note: this model is not the Phi-Ed fine-tune; stories come from the plain model")
        story = settings.story
        storyteller = Storyteller(backend, story.age_group, story.language, settings.llm.memory_tokens, story.max_sentence_words)
        bus.emit(SessionStart(model=backend.description, fine_tuned=backend.fine_tuned, age_group=story.age_group, language=story.language))
        session = Session(storyteller, bus, say=_print_sentence)
        stop = threading.Event()
        if not args.text:
            log.warning("hands-free listening is not available yet; reading turns from standard input")
        if sys.stdin.isatty():
            print(f"Ready ({story.age_group}, {story.language}). Type what the child says; Ctrl-D to end.", file=sys.stderr)
        session.run_text(sys.stdin, stop)
        return 0
    finally:
        if sink:
            sink.close()


def _print_sentence(text: str) -> None:
    print(text, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line for every expected failure, no traceback."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    _quiet_libraries()
    # SIGTERM (a kiosk supervisor stopping us) ends the session like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except StorytellerAppError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("\nGoodbye!", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
