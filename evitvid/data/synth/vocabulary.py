"""The label spaces: verb classes that are motions, noun classes that are Fashion-MNIST items.

* **Nouns** are real images: Fashion-MNIST items of five of its ten classes (t-shirt, trouser,
  dress, sneaker, bag), from the t10k split only, tinted, on textured backgrounds that vary per
  video, with distractor items and camera jitter (drawn by `render`).
* **Image pretraining** (the stand-in for ImageNet, `evitvid.data.images`) names the other five
  classes (`PRETRAINING_LABELS`: pullover, coat, sandal, shirt, ankle boot), from the train split:
  related to the nouns as ImageNet's classes are to EK100's, but never the nouns themselves, so
  pretraining is not supervised noun training.
* **Verbs** are motions of the item over the segment. Most come in pairs that are exact
  time-reversals of one motion (`REVERSE_PAIRS`: put/take, open/close, ...): a clip of one
  played backwards is a clip of the other, drawn from the same distribution, so a model blind
  to frame order cannot beat chance within a pair. `shake` and `hold` do not depend on order.
  `HFLIP_SWAP` lists the verbs a horizontal flip turns into each other (rotations, move-left /
  move-right): flip augmentation must swap those labels.

The pairs are of two kinds (`PAIR_KINDS`, and `verb_kind` for one verb), which need different
things of an order-aware model:

* **end state** (take/put, open/close, turn-on/turn-off, push/pull): the two ends of the clip
  differ (the item present or not, the door over it or not, the light on or off, the item near
  or far), so the first and last frames tell the verb to a model that knows which is which;
* **motion** (rotate-clockwise/anticlockwise, move-left/move-right): first and last frames are
  drawn from one distribution (the start angle is uniform over the circle; the camera follows a
  slid item, so the item keeps its place in the frame while the scene moves behind it), so only
  the direction of the motion between frames tells the verb. The motions are large enough to be
  seen between frames a quarter of the segment apart at 64 pixels (`plan._motion_params`).

`shake` and `hold` are "unpaired". A verb's direction is decided in one place, `render.pose`;
the two verbs of a pair are drawn equally often (`plan._class_weights`), so that frequency alone
cannot tell them apart either.
"""
from __future__ import annotations

from dataclasses import dataclass

from evitvid.data.fashion_mnist import CLASSES as FASHION_CLASSES

__all__ = ["VerbSpec", "NounSpec", "VERBS", "NOUNS", "REVERSE_PAIRS", "HFLIP_SWAP", "PRETRAINING_LABELS",
           "END_STATE", "MOTION", "UNPAIRED", "MOTION_KINDS", "PAIR_KINDS", "verb_kind"]


@dataclass(frozen=True)
class VerbSpec:
    """A verb class: EK100-style key, instances and category, and the motion that shows it.

    `reverse` plays `motion` backwards: two verbs with the same motion and opposite `reverse`
    are exact time-reversals of each other.
    """

    key: str
    instances: tuple[str, ...]
    category: str
    motion: str
    reverse: bool = False


@dataclass(frozen=True)
class NounSpec:
    """A noun class: EK100-style key, instances, category, and its Fashion-MNIST label."""

    key: str
    instances: tuple[str, ...]
    category: str
    fashion_label: int


# Table order is class id order and, as in EK100, roughly frequency order (see plan._class_weights).
# The motion pairs come right after the two most frequent end-state pairs, so that each has about
# as many validation segments as the others, enough to read them on their own.
VERBS: tuple[VerbSpec, ...] = (
    VerbSpec("take", ("take", "pick-up", "grab", "get"), "retrieve", "enter", reverse=True),
    VerbSpec("put", ("put", "put-down", "place", "leave"), "leave", "enter"),
    VerbSpec("open", ("open", "open-up"), "access", "reveal"),
    VerbSpec("close", ("close", "shut"), "block", "reveal", reverse=True),
    VerbSpec("rotate-clockwise", ("rotate-clockwise", "turn-clockwise"), "manipulate", "rotate"),
    VerbSpec("rotate-anticlockwise", ("rotate-anticlockwise", "turn-anticlockwise"), "manipulate", "rotate",
             reverse=True),
    VerbSpec("move-left", ("move-left", "slide-left"), "transition", "slide", reverse=True),
    VerbSpec("move-right", ("move-right", "slide-right"), "transition", "slide"),
    VerbSpec("turn-on", ("turn-on", "switch-on"), "access", "light"),
    VerbSpec("turn-off", ("turn-off", "switch-off"), "block", "light", reverse=True),
    VerbSpec("shake", ("shake", "wiggle"), "manipulate", "shake"),
    VerbSpec("push", ("push", "push-away"), "manipulate", "approach", reverse=True),
    VerbSpec("pull", ("pull", "pull-towards"), "manipulate", "approach"),
    VerbSpec("hold", ("hold", "keep"), "manipulate", "hold"),
)

# Five of Fashion-MNIST's ten classes; the other five are the image pretraining's (PRETRAINING_LABELS).
NOUNS: tuple[NounSpec, ...] = (
    NounSpec("bag", ("bag", "handbag"), "containers", 8),
    NounSpec("t-shirt", ("t-shirt", "top", "tee"), "clothes", 0),
    NounSpec("sneaker", ("sneaker", "trainer", "shoe:sport"), "footwear", 7),
    NounSpec("trouser", ("trouser", "trousers", "jeans"), "clothes", 1),
    NounSpec("dress", ("dress",), "clothes", 3),
)

# The Fashion-MNIST labels the image pretraining names, in label order: every label no noun uses.
# Its classifier's class i is label PRETRAINING_LABELS[i] (`evitvid.data.images.FashionImages`).
PRETRAINING_LABELS: tuple[int, ...] = tuple(
    label for label in range(len(FASHION_CLASSES)) if label not in {n.fashion_label for n in NOUNS})


def _pairs() -> tuple[tuple[int, int], ...]:
    pairs = []
    for i, a in enumerate(VERBS):
        for j, b in enumerate(VERBS):
            if i < j and a.motion == b.motion:
                if a.reverse == b.reverse:
                    raise AssertionError(f"verbs {a.key} and {b.key} share a motion without being reversals")
                pairs.append((i, j))
    return tuple(pairs)


# (verb_class, verb_class) pairs that are each other's time-reversal.
REVERSE_PAIRS: tuple[tuple[int, int], ...] = _pairs()
_VERB_ID = {v.key: i for i, v in enumerate(VERBS)}

END_STATE, MOTION, UNPAIRED = "end state", "motion", "unpaired"
# What tells the two verbs of a motion's pair apart (module docstring): the ends of the clip, or
# only the direction of motion between its frames.
MOTION_KINDS: dict[str, str] = {"enter": END_STATE, "reveal": END_STATE, "light": END_STATE,
                                "approach": END_STATE, "rotate": MOTION, "slide": MOTION}
# Each reverse pair's kind: "end state" or "motion".
PAIR_KINDS: dict[tuple[int, int], str] = {(a, b): MOTION_KINDS[VERBS[a].motion] for a, b in REVERSE_PAIRS}


def verb_kind(verb: int | str) -> str:
    """The kind of a verb's reverse pair, "end state" or "motion", or "unpaired" (shake, hold).

    `verb` is a class id or a key ("move-left"); anything else raises `ValueError`.
    """
    if isinstance(verb, str):
        if verb not in _VERB_ID:
            raise ValueError(f"verb_kind: unknown verb key {verb!r}; the synthetic verbs are {sorted(_VERB_ID)}")
        verb = _VERB_ID[verb]
    if not 0 <= verb < len(VERBS):
        raise ValueError(f"verb_kind: verb class {verb} outside 0..{len(VERBS) - 1}")
    for pair, kind in PAIR_KINDS.items():
        if verb in pair:
            return kind
    return UNPAIRED


# A horizontal flip turns a clockwise rotation into an anticlockwise one and left into right.
HFLIP_SWAP: dict[int, int] = {
    **{_VERB_ID["rotate-clockwise"]: _VERB_ID["rotate-anticlockwise"],
       _VERB_ID["rotate-anticlockwise"]: _VERB_ID["rotate-clockwise"]},
    **{_VERB_ID["move-left"]: _VERB_ID["move-right"], _VERB_ID["move-right"]: _VERB_ID["move-left"]},
}
