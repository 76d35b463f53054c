"""The answer normalisation and word metrics of LLaVA-Med v1.0.0's VQA scorer (`llava/eval/eval_metrics`).

Reproduced behaviour for behaviour, quirks included, so that a score here is the score its `run_eval.py`
prints for the same files:
- punctuation (; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !) is deleted where the answer has it next to a space
  or where the answer holds a digit,digit group, and is replaced by a space otherwise;
- a "." not followed by a digit is deleted — at most 32 of them, because its call passes `re.UNICODE` (32)
  where `re.sub` takes the replacement count;
- words are lower-cased; "none", "zero", "one" … "ten" become digits; the articles a, an, the are dropped;
  apostrophe-less contractions ("dont") get their apostrophe back; commas are removed;
- `split_sentence`: words split on white space, counted; recall and precision count word occurrences.
"""

from __future__ import annotations

import re
from collections import Counter

NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")  # its pattern's "(?!<=\d)" is a look-ahead that always holds at a "."
_PERIOD_LIMIT = 32  # re.UNICODE, passed as the count
# The contractions its table restores. A key is the form with one apostrophe left out (every one, in turn, of a
# form with several); the table's capitalised keys ("Im", "Ive") never match lower-cased words and are left out.
_CONTRACTED = [
    "ain't",
    "aren't",
    "can't",
    "could've",
    "couldn't",
    "didn't",
    "doesn't",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "he'd",
    "he's",
    "how'd",
    "how'll",
    "how's",
    "isn't",
    "it'd",
    "it'll",
    "ma'am",
    "mightn't",
    "might've",
    "mustn't",
    "must've",
    "needn't",
    "not've",
    "o'clock",
    "oughtn't",
    "shan't",
    "should've",
    "shouldn't",
    "somebody'll",
    "somebody's",
    "someone'd",
    "someone'll",
    "someone's",
    "something'd",
    "something'll",
    "that's",
    "there'd",
    "there're",
    "there's",
    "they'd",
    "they'll",
    "they're",
    "they've",
    "'twas",
    "wasn't",
    "we've",
    "weren't",
    "what'll",
    "what're",
    "what's",
    "what've",
    "when's",
    "where'd",
    "where's",
    "where've",
    "who'd",
    "who'll",
    "who's",
    "who've",
    "why'll",
    "why're",
    "why's",
    "won't",
    "would've",
    "wouldn't",
    "y'all",
    "you'd",
    "you'll",
    "you're",
    "you've",
    "couldn't've",
    "hadn't've",
    "he'd've",
    "it'd've",
    "mightn't've",
    "shouldn't've",
    "she'd've",
    "somebody'd've",
    "someone'd've",
    "something'd've",
    "there'd've",
    "they'd've",
    "we'd've",
    "who'd've",
    "wouldn't've",
    "y'all'll",
    "y'all'd've",
    "you'd've",
    "'ow's'at",
]


def _contractions() -> dict[str, str]:
    table = {}
    for form in _CONTRACTED:
        for i, char in enumerate(form):
            if char == "'":
                table[form[:i] + form[i + 1 :]] = form
    # its three entries that break the rule: two map a word to itself, one removes the apostrophe
    table.update({"let's": "let's", "she's": "she's", "somebody'd": "somebodyd"})
    return table


CONTRACTIONS = _contractions()


def normalize_word(text: str) -> str:
    """LLaVA-Med's `normalize_word`."""
    stripped = text
    joins_digits = _DIGIT_COMMA_DIGIT.search(text) is not None
    for mark in PUNCTUATION:
        if mark + " " in text or " " + mark in text or joins_digits:
            stripped = stripped.replace(mark, "")
        else:
            stripped = stripped.replace(mark, " ")
    stripped = _PERIOD.sub("", stripped, count=_PERIOD_LIMIT)
    words = [NUMBER_WORDS.get(word, word) for word in stripped.lower().split()]
    words = [CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES]
    return " ".join(words).replace(",", "")


def word_counts(text: str) -> Counter:
    """`split_sentence(text, 1)`: lower-cased words split on white space, with their counts."""
    return Counter(text.lower().strip().split())


def f1_precision_recall(candidate: str, reference: str) -> tuple[float, float, float]:
    """`calculate_f1score(candidate, reference)`: both normalised again, word occurrences counted."""
    cand, ref = word_counts(normalize_word(candidate)), word_counts(normalize_word(reference))
    if not cand or not ref:
        return 0.0, 0.0, 0.0
    tp = sum(count for word, count in cand.items() if word in ref)
    fp = sum(count for word, count in cand.items() if word not in ref)
    fn = sum(count for word, count in ref.items() if word not in cand)
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall), precision, recall


def exact_match_ratio(candidate: str, reference: str) -> float:
    """`calculate_exactmatch`: distinct reference words found in the candidate, over the candidate's word count."""
    cand, ref = word_counts(normalize_word(candidate)), word_counts(normalize_word(reference))
    total = sum(cand.values())
    return sum(1 for word in ref if word in cand) / total if total else 0.0
