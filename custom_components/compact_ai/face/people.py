"""Enrolled people, kept in Home Assistant's private storage.

Biometric data (embeddings and the aligned face chips they were computed from) lives only
here: a private ``.storage`` file, never in logs, events or diagnostics. Chips are kept so
embeddings can be recomputed when the tier's embedder changes, instead of mixing vectors
of two models: since version 3 each chip is a 224 px ArcFace framing stored with the face's
points in it (``points``, and YuNet's ``landmarks`` when it saw the face), from which every
tier cuts the chip its embedder wants (``engine/face/align.py``).

Samples stored before version 3 keep dlib's 150 px chip and no points: only an embedder that
takes dlib's framing can re-embed them. Under any other embedder they keep the embedding of
the embedder that made it (``embedder``) and are left out of matching until the tier goes
back, or the person is enrolled again (a repair issue says who). A person with such a negative
is not matched at all meanwhile: without it, the look-alike it keeps out would get in. New
faces replace a person's unusable samples, but never their unusable negatives: which
look-alike each one kept out is not known, so adding one must not drop the others. Such a
person is deleted and enrolled again with all their look-alikes.
"""

from __future__ import annotations

import math
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util, slugify

from ..const import DOMAIN
from ..errors import UserError
from ..helpers.store_check import StoredDataError, async_load_checked, expect

# 2: every negative records its source (negatives.py); 3: 224 px chips with their points
STORAGE_VERSION: Final = 3
STORAGE_KEY: Final = f"{DOMAIN}.people"
MAX_SAMPLES_PER_PERSON: Final = 20
MAX_PEOPLE: Final = 50  # a full person is about 0.8 MB stored (224 px chips, 14 kB each)
MAX_NAME_LENGTH: Final = 64
UNKNOWN_SOURCE: Final = "unknown"  # a negative stored by version 1, which kept no source
POINTS: Final = 4  # BlazeFace's eyes, nose tip and mouth
LANDMARKS: Final = 5  # YuNet's eyes, nose tip and mouth corners
Points = list[list[float]]
# A face to add: embedding, chip (JPEG, base64), points and landmarks (or None) in the chip.
NewFace = tuple[list[float], str, Points, Points | None]


@dataclass(slots=True)
class Sample:
    """One enrolled face: its embedding, the chip (JPEG, base64) and the face's points in it.

    A negative also records its ``source`` (negatives.py), so that it is deleted with it.
    ``points`` is None for a 150 px chip of before version 3 (dlib's framing); ``embedder``
    names the embedder of such a sample's embedding while the store's is another one.
    """

    embedding: list[float]
    chip: str
    added: str
    source: str = ""
    points: Points | None = None
    landmarks: Points | None = None
    embedder: str | None = None

    def usable(self, embedder: str | None) -> bool:
        """Return whether the embedding belongs to ``embedder`` (never mix embedders)."""
        return self.embedder is None or self.embedder == embedder


@dataclass(slots=True)
class Person:
    """A person with positive samples and negatives (faces that must never match them)."""

    person_id: str
    name: str
    samples: list[Sample] = field(default_factory=list)
    negatives: list[Sample] = field(default_factory=list)


class PeopleError(UserError):
    """A request about people that cannot be fulfilled."""


def _clean(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())


def normalize_name(name: str) -> str:
    """Return a display name as stored: Unicode NFC, runs of whitespace as one space.

    Names are matched exactly after this; a name that differs only in case or punctuation
    from another person's is refused, never merged (see ``People.resolve``).
    """
    cleaned = _clean(name)
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
        """Migrate stored data written by an older version of the integration.

        1 -> 2: negatives kept no source. They are kept, tagged ``unknown`` (dropping them
        would let through the lookalikes they were added to stop); the face manager then
        tags the ones that show an enrolled person with that person (negatives.py).
        2 -> 3: nothing to rewrite. Chips without points stay dlib's 150 px framing (see the
        module's docstring); new samples add 224 px chips with their points.
        """
        if old_major_version > STORAGE_VERSION:  # a downgrade: saving would drop what it added
            raise StoredDataError(f"written by a newer version (store version {old_major_version})")
        data = expect(old_data, dict, "the stored data")
        if old_major_version < 2:
            for person in _dicts(data.get("people")):
                for negative in _dicts(person.get("negatives")):
                    negative.setdefault("source", UNKNOWN_SOURCE)
        _parse(data)  # damaged data raises here, before Home Assistant saves it migrated
        return data


class People:
    """The enrolled people and the embedder their embeddings belong to."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store (private file)."""
        self._hass = hass
        self._store = _PeopleStore(
            hass,
            STORAGE_VERSION,
            STORAGE_KEY,
            private=True,
            atomic_writes=True,
            serialize_in_event_loop=False,  # 50 people are ~30 MB of JSON
        )
        self.people: dict[str, Person] = {}
        self.embedder: str | None = None

    async def async_load(self) -> None:
        """Read the stored people; a damaged store is a repair issue and starts empty."""
        self.embedder, self.people = await async_load_checked(self._hass, self._store, _parse)

    async def async_save(self) -> None:
        """Write the people to the private storage file (serialized in an executor).

        The data handed over shares nothing mutable with :attr:`people`.
        """
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

    def check_room(
        self, name: str, count: int, *, negative: bool = False, add_to_existing: bool = False
    ) -> Person:
        """Return the person ``count`` more samples go to; raise unless they fit.

        Called before any image is read or decoded, so a full person or a full gallery costs
        nothing; :meth:`add_samples` checks again with what was actually accepted.
        """
        person = self.resolve(name, negative=negative, add_to_existing=add_to_existing)
        if person.person_id not in self.people and len(self.people) >= MAX_PEOPLE:
            raise PeopleError("too_many_people", limit=str(MAX_PEOPLE))
        kept = person.negatives if negative else person.samples
        # samples this embedder cannot use are replaced by new ones (see add_samples)
        room = MAX_SAMPLES_PER_PERSON - sum(s.usable(self.embedder) for s in kept)
        if room <= 0:
            raise PeopleError("person_full", name=person.name, limit=str(MAX_SAMPLES_PER_PERSON))
        if count > room:
            raise PeopleError("person_room", name=person.name, room=str(room), count=str(count))
        return person

    def add_samples(
        self,
        name: str,
        samples: list[NewFace],
        *,
        negative: bool = False,
        add_to_existing: bool = False,
        source: str = "",
    ) -> Person:
        """Add positive (or negative, with their ``source``) samples to a person.

        The person is created if needed.
        """
        if negative != bool(source):
            raise ValueError("a negative needs its source; a positive sample has none")
        person = self.check_room(
            name, len(samples), negative=negative, add_to_existing=add_to_existing
        )
        target = person.negatives if negative else person.samples
        if not negative:  # enrolled again: their unusable samples are replaced (module doc)
            target[:] = [sample for sample in target if sample.usable(self.embedder)]
        now = dt_util.utcnow().isoformat()
        target.extend(
            Sample(embedding, chip, now, source, points, landmarks)
            for embedding, chip, points, landmarks in samples
        )
        self.people[person.person_id] = person
        return person

    def delete(self, name: str) -> Person:
        """Remove the person called exactly ``name`` and every sample of theirs."""
        person = self.find(name)
        if person is None:
            raise PeopleError("person_not_found", name=name)
        return self.people.pop(person.person_id)

    def rename(self, name: str, new_name: str) -> Person:
        """Give the person called exactly ``name`` another display name (same id and rights).

        The new name must be free by the same rules as a new person's.
        """
        person = self.find(name)
        if person is None:
            raise PeopleError("person_not_found", name=name)
        new_name = normalize_name(new_name)
        for other in self.people.values():
            if other is person:
                continue
            if other.name == new_name:
                raise PeopleError("person_exists", name=new_name)
            if _folded(other.name) == _folded(new_name):
                raise PeopleError("name_collision", name=new_name, existing=other.name)
        person.name = new_name
        return person

    def chips(self) -> list[tuple[str, list[tuple[str, Points | None, Points | None]]]]:
        """Return every person's stored chips with their points (a copy, for an executor)."""
        return [
            (
                person.person_id,
                [(s.chip, _copy(s.points), _copy(s.landmarks)) for s in person.samples],
            )
            for person in self.people.values()
        ]

    def waiting(self) -> list[str]:
        """Return who has samples the current embedder cannot use (enroll them again)."""
        return sorted(
            person.name
            for person in self.people.values()
            if not all(s.usable(self.embedder) for s in [*person.samples, *person.negatives])
        )

    def names(self) -> dict[str, str]:
        """Return the display name of every person id."""
        return {person_id: person.name for person_id, person in self.people.items()}


def _copy(points: Points | None) -> Points | None:
    return None if points is None else [list(point) for point in points]


def vars_of(sample: Sample) -> dict[str, Any]:
    """Return a sample as a JSON-ready dict (a copy: it is serialized in another thread)."""
    data: dict[str, Any] = {
        "embedding": list(sample.embedding),
        "chip": sample.chip,
        "added": sample.added,
    }
    if sample.source:
        data["source"] = sample.source
    for key, points in (("points", sample.points), ("landmarks", sample.landmarks)):
        if points is not None:
            data[key] = _copy(points)
    if sample.embedder is not None:
        data["embedder"] = sample.embedder
    return data


def _dicts(value: Any) -> list[dict[str, Any]]:
    """Return the dicts among a stored value's items (the migration leaves the rest to _parse)."""
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, dict)]


def _parse_sample(item: Any, where: str, negative: bool) -> Sample:
    item = expect(item, dict, where)
    embedding = expect(item.get("embedding"), list, f"{where}: embedding")
    if not embedding or not all(
        isinstance(value, float | int) and not isinstance(value, bool) for value in embedding
    ):
        raise StoredDataError(f"{where}: embedding is not a list of numbers")
    chip = expect(item.get("chip"), str, f"{where}: chip")
    added = expect(item.get("added"), str, where)
    source = expect(item.get("source"), str, f"{where}: source") if negative else ""
    if negative and not source:
        raise StoredDataError(f"{where}: a negative without its source")
    points = _points(item.get("points"), POINTS, f"{where}: points")
    landmarks = _points(item.get("landmarks"), LANDMARKS, f"{where}: landmarks")
    if points is None and landmarks is not None:
        raise StoredDataError(f"{where}: landmarks without points")
    embedder = item.get("embedder")
    if embedder is not None:
        expect(embedder, str, f"{where}: embedder")
    return Sample([float(v) for v in embedding], chip, added, source, points, landmarks, embedder)


def _points(value: Any, count: int, where: str) -> Points | None:
    """Return ``count`` stored (x, y) pairs of finite numbers, or None if absent."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != count
        or not all(
            isinstance(point, list)
            and len(point) == 2
            and all(
                isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v)
                for v in point
            )
            for point in value
        )
    ):
        raise StoredDataError(f"{where}: not {count} pairs of finite numbers")
    return [[float(x), float(y)] for x, y in value]


def _parse(raw: dict[str, Any]) -> tuple[str | None, dict[str, Person]]:
    """Return the embedder id and the people of stored data; a wrong shape raises."""
    embedder = raw.get("embedder")
    if embedder is not None:
        expect(embedder, str, "embedder")
    people: dict[str, Person] = {}
    for person_id, item in expect(raw.get("people", {}), dict, "people").items():
        item = expect(item, dict, f"person {person_id}")
        name = expect(item.get("name"), str, f"person {person_id}: name")
        samples, negatives = (
            [
                _parse_sample(sample, f"person {person_id}: {kind} {index}", kind == "negatives")
                for index, sample in enumerate(expect(item.get(kind, []), list, kind))
            ]
            for kind in ("samples", "negatives")
        )
        # names stored by older versions may not be NFC: clean them so they match as typed
        people[person_id] = Person(person_id, _clean(name), samples, negatives)
    return embedder, people
