"""Enrolled people, kept in Home Assistant's private storage.

Biometric data (embeddings and the aligned face chips they were computed from) lives only
here: a private ``.storage`` file, never in logs, events or diagnostics. Chips are kept so
embeddings can be recomputed when the tier's embedder changes, instead of mixing vectors
of two models.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util, slugify

from .const import DOMAIN
from .errors import UserError

STORAGE_VERSION: Final = 1
STORAGE_KEY: Final = f"{DOMAIN}.people"
MAX_SAMPLES_PER_PERSON: Final = 20
MAX_NAME_LENGTH: Final = 64


@dataclass(slots=True)
class Sample:
    """One enrolled face: its embedding and the aligned chip (JPEG, base64)."""

    embedding: list[float]
    chip: str
    added: str


@dataclass(slots=True)
class Person:
    """A person with positive samples and negatives (faces that must never match them)."""

    person_id: str
    name: str
    samples: list[Sample] = field(default_factory=list)
    negatives: list[Sample] = field(default_factory=list)


class PeopleError(UserError):
    """A request about people that cannot be fulfilled."""


def normalize_name(name: str) -> str:
    """Return a display name as stored: Unicode NFC, runs of whitespace as one space.

    Names are matched exactly after this; a name that differs only in case or punctuation
    from another person's is refused, never merged (see ``People.resolve``).
    """
    cleaned = " ".join(unicodedata.normalize("NFC", name).split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or not _folded(cleaned):
        raise PeopleError("invalid_name", name=cleaned[:MAX_NAME_LENGTH] or name[:1])
    return cleaned


def _folded(name: str) -> str:
    """Return the form two names must not share (case and punctuation folded)."""
    folded = slugify(name)
    return "" if folded == "unknown" else folded


def new_person_id(name: str) -> str:
    """Return a fresh id: never reused, so a new person never inherits a deleted one's rights."""
    return f"{_folded(name)}_{secrets.token_hex(4)}"


class _PeopleStore(Store[dict[str, Any]]):
    """The storage file, with a migration hook for future versions."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        """Migrate stored data written by an older version of the integration."""
        # Version 1 is the first; later versions add their steps here.
        return old_data


class People:
    """The enrolled people and the embedder their embeddings belong to."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store (private file)."""
        self._store = _PeopleStore(
            hass, STORAGE_VERSION, STORAGE_KEY, private=True, atomic_writes=True
        )
        self.people: dict[str, Person] = {}
        self.embedder: str | None = None

    async def async_load(self) -> None:
        """Read the stored people."""
        raw = await self._store.async_load() or {}
        self.embedder = raw.get("embedder")
        self.people = {
            person_id: Person(
                person_id=person_id,
                name=item["name"],
                samples=[Sample(**sample) for sample in item.get("samples", [])],
                negatives=[Sample(**sample) for sample in item.get("negatives", [])],
            )
            for person_id, item in raw.get("people", {}).items()
        }

    async def async_save(self) -> None:
        """Write the people to the private storage file."""
        await self._store.async_save(
            {
                "embedder": self.embedder,
                "people": {
                    person.person_id: {
                        "name": person.name,
                        "samples": [vars_of(sample) for sample in person.samples],
                        "negatives": [vars_of(sample) for sample in person.negatives],
                    }
                    for person in self.people.values()
                },
            }
        )

    def find(self, name: str) -> Person | None:
        """Return the person called exactly ``name`` (after normalisation), if any."""
        name = normalize_name(name)
        return next((p for p in self.people.values() if p.name == name), None)

    def resolve(self, name: str, *, negative: bool, add_to_existing: bool) -> Person:
        """Return the person an enrollment for ``name`` goes to (new ones are not stored yet).

        Raises when adding to an existing person was not asked for, when negatives name
        nobody, or when ``name`` folds into another person's name ("alice" vs "Alice").
        """
        person = self.find(name)
        if person is not None:
            if not negative and not add_to_existing:
                raise PeopleError("person_exists", name=person.name)
            return person
        name = normalize_name(name)
        for other in self.people.values():
            if _folded(other.name) == _folded(name):
                raise PeopleError("name_collision", name=name, existing=other.name)
        if negative:
            raise PeopleError("person_not_found", name=name)
        return Person(new_person_id(name), name)

    def add_samples(
        self,
        name: str,
        samples: list[tuple[list[float], str]],
        *,
        negative: bool = False,
        add_to_existing: bool = False,
    ) -> Person:
        """Add positive (or negative) samples to a person, creating the person if needed."""
        person = self.resolve(name, negative=negative, add_to_existing=add_to_existing)
        target = person.negatives if negative else person.samples
        if len(target) + len(samples) > MAX_SAMPLES_PER_PERSON:
            raise PeopleError("person_full", name=person.name, limit=str(MAX_SAMPLES_PER_PERSON))
        now = dt_util.utcnow().isoformat()
        target.extend(Sample(embedding, chip, now) for embedding, chip in samples)
        self.people[person.person_id] = person
        return person

    def delete(self, name: str) -> Person:
        """Remove the person called exactly ``name`` and every sample of theirs."""
        person = self.find(name)
        if person is None:
            raise PeopleError("person_not_found", name=name)
        return self.people.pop(person.person_id)

    def names(self) -> dict[str, str]:
        """Return the display name of every person id."""
        return {person_id: person.name for person_id, person in self.people.items()}


def vars_of(sample: Sample) -> dict[str, Any]:
    """Return a sample as a JSON-ready dict."""
    return {"embedding": sample.embedding, "chip": sample.chip, "added": sample.added}
