"""The categories of the rule layer; its word lists are in each language's file (lang/: safety_words,
safety_fuzzy), written as regex fragments.

Text is matched after `normalize()` (lower case, accents removed, ß -> ss), so the lists are
written without accents. Each fragment is matched as whole words: `(?<!\\w)fragment(?!\\w)`,
which is what keeps "grape" and "Scunthorpe" clear of the short words inside them. Inflections
are spelled out in each fragment rather than matched with a catch-all `\\w*`, for the same reason
("ass" must not catch "assistant", "viol" must not catch "violon").
"""

from __future__ import annotations

# Every category the rules know, in the order a sentence is reported when several match
# (the most serious first).
CATEGORIES = (
    "self_harm", "sexual", "hate", "gore", "dangerous", "profanity", "personal_info",
    "violence", "rude", "peril",
)
