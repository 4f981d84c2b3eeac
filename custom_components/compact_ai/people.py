"""Enrolled people, kept in Home Assistant's private storage.

Biometric data (embeddings and the aligned face chips they were computed from) lives only
here: a private ``.storage`` file, never in logs, events or diagnostics. Chips are kept so
embeddings can be recomputed when the tier's embedder changes, instead of mixing vectors
of two models.
"""

from __future__ import annotations

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


def person_id_for(name: str) -> str:
    """Return the stable id of a display name (case and punctuation folded)."""
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        raise PeopleError("invalid_name", name=name[:MAX_NAME_LENGTH])
    person_id = slugify(cleaned)
    if not person_id or person_id == "unknown":
        raise PeopleError("invalid_name", name=cleaned)
    return person_id


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

    def add_samples(
        self, name: str, samples: list[tuple[list[float], str]], *, negative: bool = False
    ) -> Person:
        """Add positive (or negative) samples to a person, creating the person if needed."""
        person_id = person_id_for(name)
        person = self.people.get(person_id) or Person(person_id, " ".join(name.split()))
        target = person.negatives if negative else person.samples
        if len(target) + len(samples) > MAX_SAMPLES_PER_PERSON:
            raise PeopleError("person_full", name=person.name, limit=str(MAX_SAMPLES_PER_PERSON))
        now = dt_util.utcnow().isoformat()
        target.extend(Sample(embedding, chip, now) for embedding, chip in samples)
        self.people[person_id] = person
        return person

    def delete(self, name: str) -> Person:
        """Remove a person and every sample of theirs."""
        person_id = person_id_for(name)
        if person_id not in self.people:
            raise PeopleError("person_not_found", name=name)
        return self.people.pop(person_id)


def vars_of(sample: Sample) -> dict[str, Any]:
    """Return a sample as a JSON-ready dict."""
    return {"embedding": sample.embedding, "chip": sample.chip, "added": sample.added}
