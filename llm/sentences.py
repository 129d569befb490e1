"""Incremental sentence splitting of a streamed LLM story, and cleaning of each sentence for speech.

Hand-written rules, not pysbd: pysbd only segments a whole text, so re-running it on a growing
buffer is quadratic and emits a sentence before its end is certain (e.g. a chunk ending in "Mr.").

The splitter is a per-character state machine: every character is examined once, in order, and
every decision depends only on the characters seen so far. That makes the output independent of
how the stream is chunked, and a sentence is emitted only once no later text can change it.
"""

from __future__ import annotations

import re

import lang

__all__ = ["SentenceSplitter", "clean_for_speech"]

_TERMINATORS = ".!?…"
# Characters that may close a sentence after its terminator: quotes of every style (a quote glued
# to a terminator is a closing one in en, fr and de alike), brackets, and markdown emphasis.
_CLOSERS = "\"'”’»«“‘)]}*_`"
_MARKDOWN = "*_`"
# A sentence never starts with these, so a terminator before them is not a sentence end.
_NO_BREAK_BEFORE = ",;:"
_CLAUSE_PUNCT = ",;:"
_DASHES = frozenset({"-", "--", "–", "—"})

# Per language (lang/): the abbreviations after which ". X" is not a sentence end (single letters,
# initials "J. R. R.", "z. B.", "d. h.", "p. ex.", fr "M.", are handled by rule; "etc.", "usw." are
# absent on purpose: they end a sentence unless a lowercase word follows, the default rule), the
# closers written after a space (French "!", "»"), whether "I." is a word and "3." an ordinal.

_NUMBER_TOKEN = re.compile(r"[0-9]{1,3}")

# --- cleaning -------------------------------------------------------------------------------
# Markers a voice must not read: "# " headings, "- ", "* ", "+ ", "• " bullets, "1. " / "2) ".
_LINE_MARKER = re.compile(r"[^\S\n]*(?:#{1,6}|[-*+•]|[0-9]{1,3}[.)])(?=\s|$)")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\s]*\)")
# Emphasis and code markers; "_" only at a word edge so snake_case words survive.
_MARKUP = re.compile(r"[*`]+|~~|(?<![^\W_])_+|_+(?![^\W_])")
# Pictographs, dingbats, arrows, shapes, variation selectors, ZWJ, keycap and tag characters.
_EMOJI_CHARS = (
    "[\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d\u3297\u3299"
    "\ufe00-\ufe0f\u200d\u20e3\U0001f000-\U0001faff\U000e0020-\U000e007f]+"
)
# The space before an emoji goes with it when no word follows, so "The end 🎉." reads "The end."
_EMOJI = re.compile(rf"\s*(?>{_EMOJI_CHARS})(?![^\W_])|{_EMOJI_CHARS}")


def _clean_line(text: str, line_start: bool) -> str:
    # Line markers are only markers at the start of a line ("1. " mid-line is a number + period).
    if line_start:
        marker = _LINE_MARKER.match(text)
        if marker:
            text = text[marker.end() :]
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    text = _EMOJI.sub("", text)
    # Characters are only ever removed, never replaced by spaces, so cleaning never adds words.
    return " ".join(text.split())


def clean_for_speech(text: str) -> str:
    """Strip markdown, list markers, headings, links' URLs and emoji from text; collapse whitespace."""
    lines = (_clean_line(line, True) for line in text.split("\n"))
    return " ".join(line for line in lines if line)


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


# --- splitting ------------------------------------------------------------------------------
_NORMAL, _TERM, _TERM_SPACE = range(3)


class SentenceSplitter:
    """Incremental sentence splitter: feed() streamed text, get complete, speakable sentences."""

    def __init__(self, max_words: int = 30, language: str = "en"):
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1 (got {max_words})")
        self.max_words = max_words
        self.language = language
        code = language.lower().replace("_", "-").split("-")[0]
        # A text utility as before: a code with no file in lang/ ("es", "auto") is split as English.
        rules = lang.get(code if code in lang.CODES else "en")
        self._abbreviations = rules.abbreviations
        self._spaced_closers = rules.spaced_closers
        self._i_is_word = rules.lone_i_is_a_word  # "I." ends a sentence in English; elsewhere it is an initial
        self._ordinals = rules.number_dot_is_ordinal  # "am 3. Mai": in German "3." is an ordinal, not an end
        self._reset()

    def _reset(self) -> None:
        self._buf = ""  # unfinished text: the current sentence and what follows its terminator
        self._start = 0  # where the current sentence starts in _buf
        self._line_start = True  # the current sentence starts a line (markers are possible)
        self._state = _NORMAL
        self._tok_start: int | None = None  # start of the token being read; None between tokens
        self._tok_is_word = False  # the token has a letter or digit (so counts as a word)
        self._ntok = 0  # tokens in the current sentence
        self._words = 0  # words in the current sentence
        self._clause: tuple[int, int] | None = None  # (end, words before) of the last clause break
        self._word_end = 0  # end of the last complete word token
        # Set when a terminator is seen, used when the character after the whitespace decides.
        self._term_tok = 0  # start of the token ending in the terminator
        self._term_at = 0  # position of the first terminator character
        self._term_ntok = 0  # index of that token in the sentence
        self._term_end = 0  # end of terminators + closing quotes: the sentence end if it is one
        self._plain_dot = False  # the terminator is a lone "." (abbreviations, initials, numbers)
        self._md_pending = False  # markdown markers seen after the whitespace

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the sentences it completed, cleaned for speech."""
        out: list[str] = []
        if not text:
            return out
        base = len(self._buf)
        self._buf += text
        for i in range(base, len(self._buf)):
            self._step(i, self._buf[i], out)
        self._compact()
        return out

    def flush(self) -> list[str]:
        """Return what is left at the end of the stream, and empty the splitter for reuse."""
        out: list[str] = []
        self._emit(self._start, len(self._buf), out)
        self._reset()
        return out

    # The buffer only keeps the unfinished sentence, so each feed costs O(chunk + that sentence).
    def _compact(self) -> None:
        shift = self._start
        if not shift:
            return
        self._buf = self._buf[shift:]
        self._start = 0
        if self._tok_start is not None:
            self._tok_start -= shift
        self._term_tok -= shift
        self._term_at -= shift
        self._term_end -= shift
        self._word_end -= shift
        if self._clause is not None:
            self._clause = (self._clause[0] - shift, self._clause[1])

    def _emit(self, start: int, end: int, out: list[str]) -> None:
        sentence = _clean_line(self._buf[start:end], self._line_start)
        if _speakable(sentence):
            out.append(sentence)

    def _new_sentence(self, start: int, line_start: bool) -> None:
        self._start = start
        self._line_start = line_start
        self._ntok = 0
        self._words = 0
        self._clause = None

    def _end_token(self, end: int) -> None:
        # A clause break follows a token ending in , ; : (closing quotes aside) or a lone dash.
        buf, start = self._buf, self._tok_start
        j = end - 1
        while j > start and buf[j] in _CLOSERS:
            j -= 1
        if buf[j] in _CLAUSE_PUNCT or buf[start:end] in _DASHES:
            self._clause = (end, self._words)
        if self._tok_is_word:
            self._word_end = end
        self._tok_start = None

    def _step(self, i: int, c: str, out: list[str]) -> None:
        if c == "\n":  # a newline always ends the sentence (and the line)
            if self._tok_start is not None:
                self._end_token(i)
            self._emit(self._start, i, out)
            self._new_sentence(i + 1, True)
            self._state = _NORMAL
            return
        space = c.isspace()
        if space:
            if self._tok_start is not None:
                self._end_token(i)
        elif self._tok_start is None:
            self._tok_start = i
            self._tok_is_word = False
            self._ntok += 1

        if self._state == _TERM:
            if c in _TERMINATORS or c in _CLOSERS:
                self._plain_dot = False
                return
            if space:
                self._term_end = i
                self._md_pending = False
                self._state = _TERM_SPACE
                return
            self._state = _NORMAL  # no whitespace after it ("3.5", "e.g", "1.000"): no end
        elif self._state == _TERM_SPACE:
            if space and not self._md_pending:
                return
            if not space and c in _MARKDOWN:  # "Well... *maybe*": look past the emphasis marker
                self._md_pending = True
                return
            if not self._md_pending and c in self._spaced_closers:
                self._plain_dot = False
                self._state = _TERM
                return
            self._state = _NORMAL
            if self._is_boundary(c):
                self._emit(self._start, self._term_end, out)
                self._new_sentence(self._term_end, False)
                self._ntok = 0 if self._tok_start is None else 1

        # _NORMAL
        if c in _TERMINATORS:
            self._state = _TERM
            self._plain_dot = c == "."
            self._term_tok = self._tok_start  # type: ignore[assignment]  # c is not whitespace
            self._term_at = i
            self._term_ntok = self._ntok
        elif not self._tok_is_word and c.isalnum():
            self._tok_is_word = True
            self._words += 1
            if self._words > self.max_words:
                self._cut(out)

    def _is_boundary(self, c: str) -> bool:
        # c is the first character after the terminator's whitespace (past markdown markers).
        if c.isspace():
            return True
        if c.islower() or c in _NO_BREAK_BEFORE:  # "Well... maybe", '"Where?" asked the fox'
            return False
        return not (self._plain_dot and self._is_abbreviation())

    def _is_abbreviation(self) -> bool:
        token = self._buf[self._term_tok : self._term_at]
        k = 0
        while k < len(token) and not token[k].isalnum():  # '"Mr.', "(e.g."
            k += 1
        core = token[k:]
        if len(core) == 1 and core.isalpha():  # initials: "J. R. R. Tolkien", "z. B."
            return not (self._i_is_word and core == "I")
        if core.lower() in self._abbreviations:
            return True
        if _NUMBER_TOKEN.fullmatch(token):
            # "1. " opening a line is a list marker; in German "3." is an ordinal ("am 3. Mai").
            return self._ordinals or (self._line_start and self._term_ntok == 1)
        return False

    def _cut(self, out: list[str]) -> None:
        # The current token holds word max_words + 1: emit what precedes it, at the last clause
        # break that leaves at least 3 words in the piece, else right after the previous word (so
        # an opening quote or « between the two goes with the word it opens).
        if self._clause is not None and self._clause[1] >= 3:
            end, before = self._clause
            words = self._words - before
        else:
            end, words = self._word_end, 1
        self._emit(self._start, end, out)
        self._new_sentence(end, False)
        self._words = words
