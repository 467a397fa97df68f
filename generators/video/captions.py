"""Captions of moving-digit clips, from the parameters that rendered them (so prompts have ground truth).

Training captions use :data:`TRAIN_SINGLE` / :data:`TRAIN_PAIR` phrasings; evaluation prompts use
the held-out phrasings :data:`EVAL_SINGLE` / :data:`EVAL_PAIR` (other verbs and sentence shapes), so
the text pathway is measured on wording it never saw. Directions are in image coordinates (y down).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

import torch

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# direction phrase -> (dx, dy) in image coordinates (y grows downward)
DIRECTIONS: dict[str, tuple[float, float]] = {
    "to the right": (1.0, 0.0),
    "to the left": (-1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up and to the right": (1.0, -1.0),
    "up and to the left": (-1.0, -1.0),
    "down and to the right": (1.0, 1.0),
    "down and to the left": (-1.0, 1.0),
}
RELATIONS: tuple[str, ...] = ("apart", "together")

TRAIN_SINGLE = (
    "the digit {numeral} moves {dir}",
    "a {word} moving {dir}",
    "a handwritten {word} drifting {dir}",
    "digit {numeral} goes {dir}",
)
EVAL_SINGLE = (
    "a clip of the number {word} heading {dir}",
    "watch the {numeral} travel {dir}",
    "the number {numeral} slides {dir}",
)
TRAIN_PAIR: dict[str, tuple[str, ...]] = {
    "apart": ("a {a} and a {b} drift apart", "the digits {a} and {b} move away from each other"),
    "together": ("a {a} and a {b} move toward each other", "the digits {a} and {b} come together"),
}
EVAL_PAIR: dict[str, tuple[str, ...]] = {
    "apart": ("{wa} and {wb} separate",),
    "together": ("{wa} and {wb} approach each other",),
}


def single_caption(digit: int, direction: str, template: str) -> str:
    """'the digit 3 moves to the right' from a digit, a direction phrase and a template."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be in 0..9, got {digit}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {tuple(DIRECTIONS)}, got {direction!r}")
    return template.format(numeral=int(digit), word=DIGIT_WORDS[int(digit)], dir=direction)


def pair_caption(a: int, b: int, relation: str, template: str) -> str:
    """'a 7 and a 1 drift apart': ``a`` is the left digit, ``b`` the right one."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    return template.format(a=int(a), b=int(b), wa=DIGIT_WORDS[int(a)], wb=DIGIT_WORDS[int(b)])


@dataclass
class CaptionSet:
    """Every training caption of a clip distribution, in a fixed order, with id lookup.

    Args:
        directions: the direction phrases clips use.
        two_digits: include the two-digit captions.
    """

    directions: tuple[str, ...]
    two_digits: bool
    captions: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.captions = [single_caption(k, d, t) for k in range(10) for d in self.directions for t in TRAIN_SINGLE]
        self._pair_base = len(self.captions)
        if self.two_digits:
            self.captions += [pair_caption(a, b, r, t) for a in range(10) for b in range(10) for r in RELATIONS
                              for t in TRAIN_PAIR[r]]

    def __len__(self) -> int:
        return len(self.captions)

    def single_id(self, digit: int, direction_index: int, generator: torch.Generator) -> int:
        """Id of a random training phrasing of (digit, ``DIRECTIONS`` index)."""
        d = self.directions.index(list(DIRECTIONS)[direction_index])
        t = int(torch.randint(len(TRAIN_SINGLE), (1,), generator=generator))
        return (digit * len(self.directions) + d) * len(TRAIN_SINGLE) + t

    def pair_id(self, a: int, b: int, relation: int, generator: torch.Generator) -> int:
        """Id of a random training phrasing of a two-digit clip (left ``a``, right ``b``, ``RELATIONS`` index)."""
        if not self.two_digits:
            raise ValueError("this caption set has no two-digit captions (two_digit_prob is 0)")
        per = len(TRAIN_PAIR[RELATIONS[0]])
        t = int(torch.randint(per, (1,), generator=generator))
        return self._pair_base + ((a * 10 + b) * len(RELATIONS) + relation) * per + t


@dataclass(frozen=True)
class EvalPrompt:
    """A held-out-phrasing prompt with its ground truth (``digits[1] = -1`` for one-digit prompts)."""

    prompt: str
    digits: tuple[int, int]
    direction: int  # DIRECTIONS index, or len(DIRECTIONS) + RELATIONS index for two digits


def eval_prompts(num_prompts: int, directions: Sequence[str], two_digit: bool = False, seed: int = 0) -> list[EvalPrompt]:
    """Held-out phrasings cycling through the digits (one-digit) or random pairs (two-digit)."""
    if num_prompts < 1:
        raise ValueError(f"num_prompts must be >= 1, got {num_prompts}")
    rng = random.Random(seed)
    names = list(DIRECTIONS)
    out = []
    for i in range(num_prompts):
        if two_digit:
            a, b, r = rng.randrange(10), rng.randrange(10), i % len(RELATIONS)
            text = pair_caption(a, b, RELATIONS[r], rng.choice(EVAL_PAIR[RELATIONS[r]]))
            out.append(EvalPrompt(text, (a, b), len(DIRECTIONS) + r))
        else:
            digit, d = i % 10, directions[(i // 10 + rng.randrange(len(directions))) % len(directions)]
            out.append(EvalPrompt(single_caption(digit, d, rng.choice(EVAL_SINGLE)), (digit, -1), names.index(d)))
    return out
