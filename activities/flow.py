"""The activities as small state machines fed the child's turns: a quiz after a story, a choice inside one."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import lang
from activities.choices import INSTRUCTION, match_choice, parse_choice
from activities.questions import QA, Judgement, judge, make_questions
from activities.summary import Summary
from events import AnswerJudged, ChoiceMade, Event, QuestionAsked
from llm.prompts import Mode
from safety.rules import normalize

if TYPE_CHECKING:
    from activities.questions import Complete
    from safety.guard import Verdict

# The turn's output check (SafetyGuard.check_output): every question, answer and hint passes it.
Check = Callable[[str], "Verdict"]

@dataclass
class Step:
    """What the session does next: lines to say, events to announce, and maybe a story turn to run."""

    say: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    story: Optional[str] = None  # the story goes on along this choice (a Mode.CHOICE turn)


class Quiz:
    """Up to N questions, one at a time: praise, or a hint and one more try, or the answer told kindly."""

    def __init__(self, questions: list[QA], language: str, complete: Optional["Complete"], rng: random.Random):
        self.questions, self.language, self.complete, self.rng = questions, language, complete, rng
        self.index, self.tries = 0, 0
        self.results: list[dict] = []

    @property
    def current(self) -> QA:
        return self.questions[self.index]

    def start(self) -> Step:
        """The intro and the first question."""
        return Step([lang.get(self.language).quiz_intro, self.current.question], [self._asked()])

    def answer(self, text: str, cancel: Optional[threading.Event] = None) -> tuple[Step, bool]:
        """Take the child's answer; returns the next step and whether the quiz is over."""
        verdict: Judgement = judge(self.complete, self.current, text, self.language, cancel)
        hint = not verdict.correct and self.tries == 0
        event = AnswerJudged(number=self.index + 1, correct=verdict.correct, hint=hint,
                             dont_know=verdict.dont_know, method=verdict.method)
        if hint:
            self.tries = 1
            here = lang.get(self.language)
            template = here.dont_know_hint if verdict.dont_know else here.hint
            return Step([template.format(hint=self.current.hint)], [event]), False
        say = [self.rng.choice(lang.get(self.language).praise)] if verdict.correct else [
            lang.get(self.language).tell.format(answer=self.current.answer.rstrip("."))]
        self.results.append({"question": self.current.question, "expected": self.current.answer,
                             "correct": verdict.correct, "hint_used": self.tries > 0})
        self.index, self.tries = self.index + 1, 0
        if self.index >= len(self.questions):
            return Step(say + [lang.get(self.language).quiz_done], [event]), True
        return Step(say + [self.current.question], [event, self._asked()]), False

    def _asked(self) -> QuestionAsked:
        return QuestionAsked(number=self.index + 1, text=self.current.question)


class ChoicePoint:
    """The story paused at a choice: the child's pick, one friendly re-ask, then the story picks."""

    def __init__(self, options: tuple[str, str], language: str, rng: random.Random):
        self.options, self.language, self.rng = options, language, rng
        self.asked_again = False

    def answer(self, text: str) -> tuple[Step, bool]:
        """Take the child's pick; returns the next step and whether the choice is settled."""
        picked = match_choice(text, self.options, self.language)
        if picked is None and not self.asked_again:
            self.asked_again = True
            a, b = self.options
            return Step([lang.get(self.language).reask_choice.format(a=a, b=b)]), False
        by = "child" if picked is not None else "story"
        if picked is None:
            picked = self.rng.randrange(2)
        chosen = self.options[picked]
        line = (lang.get(self.language).child_picked if by == "child" else lang.get(self.language).story_picks).format(choice=chosen)
        event = ChoiceMade(options=list(self.options), chosen=chosen, by=by)
        return Step([line], [event], story=chosen), True


class Activities:
    """Routes the child's turns to a running quiz or choice, and starts them after a story.

    `complete` asks the model in a conversation of the activity's own (Storyteller.complete);
    `check` is the turn's output check. The child's words reach `handle` already screened.
    """

    def __init__(self, complete: Optional["Complete"], check: Optional[Check], age_group: str, language: str,
                 questions: str = "on_request", max_questions: int = 3, choices: bool = False,
                 summary: Optional[Summary] = None, rng: Optional[random.Random] = None):
        self.complete, self.check = complete, check
        self.age_group, self.language = age_group, language
        self.questions_mode, self.max_questions, self.choices = questions, max_questions, choices
        self.summary = summary
        self.rng = rng or random.Random()
        self.quiz: Optional[Quiz] = None
        self.choice: Optional[ChoicePoint] = None
        self.choice_next = choices  # the next story should stop at a choice
        self.last_story = ""
        self._story_paused = False  # the last story turn stopped at a choice: its next part continues it

    @property
    def waiting(self) -> bool:
        """A question or a choice waits for the child's answer (silence counts as one)."""
        return self.quiz is not None or self.choice is not None

    def take_instruction(self, text: str, mode: Mode) -> str:
        """Extra instruction for this story turn (stop at a choice when asked for or configured); it is used up."""
        if mode not in (Mode.NEW_STORY, Mode.CONTINUE, Mode.CHANGE):
            return ""
        asks = re.search(lang.get(self.language).ask_to_choose, normalize(text)) is not None
        if asks or self.choice_next:
            self.choice_next = self.choices  # with activities.choices, every story turn gets one choice
            return INSTRUCTION
        return ""

    def handle(self, text: str, cancel: Optional[threading.Event] = None) -> Optional[Step]:
        """The child's (screened) turn when it belongs to an activity (an answer, or "ask me a question"); else None."""
        if self.choice is not None:
            step, done = self.choice.answer(text)
            if done:
                self.choice = None
                if self.summary:
                    self.summary.choice(step.events[-1])
            return step
        if self.quiz is not None:
            step, done = self.quiz.answer(text, cancel)
            if done:
                self._finish_quiz()
            return step
        if self.questions_mode != "off" and re.search(lang.get(self.language).ask_for_questions, normalize(text)):
            if not self.last_story:
                return Step([lang.get(self.language).no_story])
            return self.start_quiz(cancel) or Step([lang.get(self.language).no_question])
        return None

    def reset(self) -> None:
        """End whatever activity is running, without a word (what was answered still counts)."""
        self._finish_quiz()
        self.choice, self._story_paused = None, False

    def new_child(self, age_group: str, language: str) -> None:
        """A new child's session: nothing of the last story or its questions carries over."""
        self.reset()
        self.age_group, self.language = age_group, language
        self.last_story, self.choice_next = "", self.choices
        if self.summary:
            self.summary.new_session(age_group, language)

    def stop(self) -> Optional[Step]:
        """The stop word: end whatever activity is running."""
        if not self.waiting:
            return None
        self.reset()
        return Step([lang.get(self.language).quiz_stopped])

    def after_story(self, story: str, last_sentence: str, ended_at_choice: bool,
                    cancel: Optional[threading.Event] = None, lesson: bool = False) -> Optional[Step]:
        """A story turn finished: wait for a choice it ended on, or start questions when configured (or after a lesson)."""
        # The part after a choice continues the story before it; anything else is a new story.
        self.last_story = f"{self.last_story} {story}".strip() if self._story_paused else story
        self._story_paused = False
        if self.summary:
            self.summary.story()
        if ended_at_choice:
            options = parse_choice(last_sentence, self.language)
            if options:
                self.choice = ChoicePoint(options, self.language, self.rng)
                self._story_paused = True
                return None  # the question was the story's last sentence; the child answers next
        # A lesson is checked by its questions unless questions are off altogether.
        if self.questions_mode == "after_story" or (lesson and self.questions_mode != "off"):
            return self.start_quiz(cancel)
        return None

    def start_quiz(self, cancel: Optional[threading.Event] = None) -> Optional[Step]:
        """Questions about the last story (only those that pass the safety check)."""
        found = make_questions(self.complete, self.last_story, self.age_group, self.language, self.max_questions, cancel)
        if self.check is not None:
            found = [q for q in found if all(self.check(t).ok for t in (q.question, q.answer, q.hint))]
        if not found:
            return None
        self.quiz = Quiz(found, self.language, self.complete, self.rng)
        return self.quiz.start()

    def _finish_quiz(self) -> None:
        if self.summary and self.quiz is not None:
            self.summary.quiz(self.quiz.results)
        self.quiz = None
