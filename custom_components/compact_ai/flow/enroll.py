"""Enrollment from the People page: the same checks and code as the enroll services.

Who the faces go to is checked (free name, room for the faces) before any snapshot is taken
or photo read (``People.check_room``); the images then go through
``FaceManager.async_enroll``, the quality gate and all, as in ``compact_ai.enroll_face``.
What became of each image is shown as a read-only field whose value the frontend translates
(accepted, or the reason), and the accepted faces as the aligned chips that were stored:
the frontend's markdown shows ``data:image/`` pictures (its sanitizer lets them through).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

import voluptuous as vol
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from ..engine.face.recognizer import Rejection
from ..face.manager import FaceManager

ACCEPTED: Final = "accepted"
OUTCOMES: Final = (ACCEPTED, *(str(reason) for reason in Rejection))
SNAPSHOTS: Final = 5  # taken SPACING apart: the head moves a little between them
SPACING: Final = 1.0
PHOTO: Final = "photos"  # the form field of uploaded photos


@dataclass(slots=True)
class Target:
    """Who the next images are enrolled for: one person, or negatives of several."""

    names: list[str]
    negative: bool = False
    add_to_existing: bool = False

    def check(self, faces: FaceManager, count: int) -> None:
        """Raise PeopleError unless ``count`` more faces fit every person named."""
        for name in self.names:
            faces.people.check_room(
                name, count, negative=self.negative, add_to_existing=self.add_to_existing
            )


@dataclass(slots=True)
class Outcome:
    """What became of each image of one round: (source, outcome) and the stored chips."""

    kind: str  # "snapshot" or "photo": the form names its fields after it
    results: list[tuple[str, str]]
    chips: list[str] = field(default_factory=list)
    person: str = ""  # the person as stored (for negatives: the first one)

    @property
    def enrolled(self) -> int:
        """How many images were accepted."""
        return sum(result == ACCEPTED for _, result in self.results)


async def async_enroll(
    faces: FaceManager, target: Target, images: list[tuple[str, bytes]], kind: str
) -> Outcome:
    """Enroll ``images`` for the target; raises PeopleError if they no longer fit.

    Negatives for several people are enrolled once per person (each person's negatives are
    theirs, and are purged with the person whose face they are).
    """
    outcome = Outcome(kind, [])
    for name in target.names:
        report = await faces.async_enroll(
            name,
            _one_by_one(images),
            negative=target.negative,
            add_to_existing=target.add_to_existing,
        )
        if outcome.results:
            continue
        rejected = {item["source"]: item["reason"] for item in report["rejected"]}
        outcome.results = [(source, rejected.get(source, ACCEPTED)) for source, _ in images]
        outcome.person = report["person"]
        person = faces.people.find(report["person"]) if report["enrolled"] else None
        if person is not None:
            samples = person.negatives if target.negative else person.samples
            outcome.chips = [sample.chip for sample in samples[-report["enrolled"] :]]
    return outcome


async def _one_by_one(images: list[tuple[str, bytes]]) -> AsyncIterator[tuple[str, bytes]]:
    for image in images:
        yield image


def outcome_fields(outcome: Outcome) -> tuple[dict[Any, Any], dict[str, str]]:
    """Return read-only form fields (one per image) and the placeholders their labels use."""
    fields: dict[Any, Any] = {}
    placeholders: dict[str, str] = {}
    for index, (source, result) in enumerate(outcome.results, 1):
        key = f"{outcome.kind}_{index}"
        if outcome.kind == "photo":
            placeholders[key] = source  # the file name is the label
        fields[vol.Optional(key, default=result)] = SelectSelector(
            SelectSelectorConfig(
                options=list(OUTCOMES),
                translation_key="enroll_outcome",
                mode=SelectSelectorMode.DROPDOWN,
                read_only=True,
            )
        )
    return fields, placeholders


def chips_markdown(chips: list[str]) -> str:
    """Return the chips as markdown pictures (no alt text: no words)."""
    return " ".join(f"![](data:image/jpeg;base64,{chip})" for chip in chips)
