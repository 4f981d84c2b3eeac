"""Face recognition in Home Assistant: scans, enrollment and the gallery of enrolled people.

The engine does the work in executor jobs; this module only fetches snapshots, keeps at most
one scan in flight per camera (newer requests coalesce into one follow-up scan), and tells
the entities and the door controller what was seen.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from ..engine.errors import EngineError, InferenceError
from ..engine.face.gallery import MatchStatus
from ..engine.face.recognizer import (
    Enrollment,
    FaceRecognizer,
    QualityGate,
    Recognition,
    Rejection,
    Scan,
)
from ..helpers.inference import async_infer
from .negatives import claims, new_upload_source, purge, snapshot
from .people import NewFace, People, Person
from .reembed import reembed, update_reenroll_issue

_LOGGER = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT = 10
MAX_IMAGE_BYTES = 25 * 1024 * 1024
_COARSE_GATE = QualityGate()  # "good" or "low" is all an unknown face's report says


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan of one camera found (no embeddings)."""

    camera: str
    scan: Scan | None
    error: str | None = None
    taken: float = 0.0  # loop time the snapshot arrived, before inference (the frame's time)
    names: Mapping[str, str] = field(default_factory=dict)  # person id -> display name

    def person(self, recognition: Recognition) -> str | None:
        """Return the display name of a matched face (``None`` for anyone else)."""
        match = recognition.match
        if match.status is not MatchStatus.MATCH or match.person is None:
            return None
        return self.names.get(match.person, match.person)

    def faces(self, *, distances: bool = False) -> list[dict[str, Any]]:
        """Return the faces as event data: person, status, box, quality.

        No distance grades a try: an unknown or ambiguous face gets no distance and only a
        coarse quality, or an attacker could tune a presentation attack step by step. A
        recognized face's distance would still guide a photo of that person from "matched"
        to the door's strict distance, and states and events are readable by every user, so
        it is only given with ``distances`` (the admin-only scan service, to tune enrollment).
        """
        if self.scan is None:
            return []
        faces: list[dict[str, Any]] = []
        for recognition in self.scan.recognitions:
            face = recognition.face
            data: dict[str, Any] = {
                "person": self.person(recognition),
                "status": str(recognition.match.status),
                "box": [round(v, 1) for v in face.detection.box],
            }
            if data["person"] is None:
                data["quality"] = "good" if _COARSE_GATE.check(face.quality) is None else "low"
            else:
                if distances:
                    data["distance"] = round(recognition.match.distance, 4)
                data["quality"] = {
                    "eye_distance": round(face.quality.eye_distance, 1),
                    "sharpness": round(face.quality.sharpness, 1),
                    "frontalness": round(face.quality.frontalness, 3),
                }
            faces.append(data)
        return faces


@dataclass(slots=True)
class _CameraScans:
    """The scan in flight for one camera and whether another was asked for meanwhile."""

    task: asyncio.Task[ScanReport] | None = None
    again: bool = False
    last: ScanReport | None = None


@dataclass(slots=True)
class FaceManager:
    """Runs scans and enrollment for the config entry."""

    hass: HomeAssistant
    entry: ConfigEntry  # scans run as its background tasks: cancelled when it unloads
    recognizer: FaceRecognizer | None
    people: People
    gate: QualityGate = field(default_factory=QualityGate)
    _cameras: dict[str, _CameraScans] = field(default_factory=dict)
    _listeners: list[Callable[[ScanReport], None]] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Whether the models loaded (they verified against the manifest)."""
        return self.recognizer is not None

    def _require_recognizer(self) -> FaceRecognizer:
        if self.recognizer is None:
            raise HomeAssistantError("models_unavailable")
        return self.recognizer

    @callback
    def async_add_listener(self, listener: Callable[[ScanReport], None]) -> CALLBACK_TYPE:
        """Call ``listener`` with every scan report; return the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def last_report(self, camera: str) -> ScanReport | None:
        """Return the last report of ``camera``."""
        state = self._cameras.get(camera)
        return state.last if state else None

    def sync_gallery(self) -> None:
        """Load the enrolled people into the recognizer's gallery.

        A person with a negative this embedder cannot use (a chip of before store version 3
        under SFace) is left out: matched without it, the look-alike it keeps out would be let
        in. They are matched again once their negatives are enrolled again too.
        """
        if self.recognizer is None:
            return
        embedder = self.people.embedder
        self.recognizer.set_people(
            (
                person.person_id,
                [
                    np.asarray(s.embedding, dtype=np.float32)
                    for s in person.samples
                    if s.usable(embedder)
                ],
                [np.asarray(s.embedding, dtype=np.float32) for s in person.negatives],
            )
            for person in self.people.people.values()
            if all(s.usable(embedder) for s in person.negatives)
        )

    async def async_reembed_if_needed(self) -> bool:
        """Recompute stored embeddings when the embedder changed; return whether it did.

        Either way, the repair issue says who must be enrolled again for this embedder.
        """
        recognizer = self.recognizer
        if recognizer is None:
            return False
        changed = self.people.embedder != recognizer.embedder_id
        if changed:
            if self.people.people:
                dropped = await async_infer(self.hass, reembed, self.people, recognizer)
                _LOGGER.info("Recomputed the face embeddings for the new model tier")
                if dropped:
                    _LOGGER.warning(
                        "%d stored face images could not be read and were removed", dropped
                    )
            self.people.embedder = recognizer.embedder_id
            await self.people.async_save()
        if waiting := update_reenroll_issue(self.hass, self.people):
            _LOGGER.warning(
                "%d people were enrolled with an older version and are not recognized by "
                "this tier's face model until they are enrolled again",
                len(waiting),
            )
        return changed and bool(self.people.people)

    async def async_scan(self, camera: str) -> ScanReport:
        """Scan ``camera`` now, or join the scan in flight and queue one more after it."""
        state = self._cameras.setdefault(camera, _CameraScans())
        if state.task is not None and not state.task.done():
            state.again = True
            return await asyncio.shield(state.task)
        state.task = self.entry.async_create_background_task(
            self.hass, self._scan_loop(camera, state), f"compact_ai scan {camera}"
        )
        return await asyncio.shield(state.task)

    async def _scan_loop(self, camera: str, state: _CameraScans) -> ScanReport:
        report = await self._scan_once(camera)
        while state.again:
            state.again = False
            report = await self._scan_once(camera)
        return report

    async def _scan_once(self, camera: str) -> ScanReport:
        recognizer = self.recognizer
        if recognizer is None:
            report = ScanReport(camera, None, "models_unavailable")
        else:
            try:
                image = await async_get_image(self.hass, camera, timeout=SNAPSHOT_TIMEOUT)
                taken = self.hass.loop.time()
                scan = await async_infer(self.hass, recognizer.scan, image.content)
            except HomeAssistantError as err:
                _LOGGER.warning("No snapshot from %s: %s", camera, err)
                report = ScanReport(camera, None, "camera_unavailable")
            except InferenceError as err:
                _LOGGER.warning("The face models failed on a snapshot of %s: %s", camera, err)
                report = ScanReport(camera, None, "inference_failed")
            except EngineError as err:
                _LOGGER.warning("Snapshot of %s could not be read: %s", camera, err)
                report = ScanReport(camera, None, "bad_image")
            else:
                report = ScanReport(camera, scan, taken=taken, names=self.people.names())
        self._cameras[camera].last = report
        for listener in list(self._listeners):
            listener(report)
        return report

    async def async_snapshot(self, camera: str) -> bytes:
        """Return one snapshot of ``camera`` (raises HomeAssistantError)."""
        image = await async_get_image(self.hass, camera, timeout=SNAPSHOT_TIMEOUT)
        return image.content

    async def async_snapshots(
        self, camera: str, count: int, interval: float
    ) -> list[tuple[str, bytes]]:
        """Return ``count`` snapshots ``interval`` s apart, named by number (for enrollment).

        Raises HomeAssistantError when the camera gives none.
        """
        images: list[tuple[str, bytes]] = []
        for index in range(count):
            if index:
                await asyncio.sleep(interval)
            images.append((f"snapshot {index + 1}", await self.async_snapshot(camera)))
        return images

    async def async_enroll(
        self,
        name: str,
        images: AsyncIterator[tuple[str, bytes]],
        *,
        negative: bool,
        add_to_existing: bool = False,
    ) -> dict[str, Any]:
        """Enroll the good faces of ``images`` (source, bytes) for ``name``; report the rest.

        One image at a time: each is decoded and embedded before the next is read, so a
        call holds one image's bytes, not all of them.
        """
        recognizer = self._require_recognizer()
        target = self.people.resolve(name, negative=negative, add_to_existing=add_to_existing)
        accepted: list[NewFace] = []
        rejected: list[dict[str, str]] = []
        async for source, data in images:
            if len(data) > MAX_IMAGE_BYTES:
                result: Enrollment | Rejection = Rejection.BAD_IMAGE
            else:
                result = await async_infer(self.hass, recognizer.enroll, data, self.gate)
            del data  # before the next image is read
            if isinstance(result, Enrollment):
                chip = base64.b64encode(result.chip_jpeg).decode("ascii")
                embedding = result.embedding.astype(float).tolist()
                landmarks = None if result.landmarks is None else result.landmarks.tolist()
                accepted.append((embedding, chip, result.points.tolist(), landmarks))
            else:
                rejected.append({"source": source, "reason": str(result)})
        if accepted:
            self.people.add_samples(
                name,
                accepted,
                negative=negative,
                add_to_existing=add_to_existing,
                source=new_upload_source() if negative else "",
            )
            self.people.embedder = recognizer.embedder_id
            await self._tag_negatives(recognizer)
            await self.people.async_save()
            self.sync_gallery()
            update_reenroll_issue(self.hass, self.people)
        return {"person": target.name, "enrolled": len(accepted), "rejected": rejected}

    async def async_tag_negatives(self) -> int:
        """Tag the negatives that show an enrolled person with them; save if any changed.

        Run at setup: negatives stored by version 1 have no source (negatives.py).
        """
        if self.recognizer is None or (tagged := await self._tag_negatives(self.recognizer)) == 0:
            return 0
        _LOGGER.info("%d stored negatives were found to show an enrolled person", tagged)
        await self.people.async_save()
        return tagged

    async def _tag_negatives(self, recognizer: FaceRecognizer) -> int:
        people = self.people.people
        if not any(person.negatives for person in people.values()):
            return 0
        found = await self.hass.async_add_executor_job(
            claims, snapshot(people, self.people.embedder), recognizer.threshold
        )
        for sample, source in found:
            sample.source = source
        return len(found)

    async def async_delete(self, name: str) -> Person:
        """Delete a person, their samples, and every negative tagged as showing them."""
        person = self.people.delete(name)
        purged = purge(self.people.people, person.person_id)
        if purged:
            _LOGGER.debug("Deleted %d negatives that showed the deleted person", purged)
        self.sync_gallery()  # before the save: no scan may match them while it is written
        update_reenroll_issue(self.hass, self.people)  # they may have been the one waiting
        await self.people.async_save()
        return person

    async def async_rename(self, name: str, new_name: str) -> Person:
        """Rename a person; their id, faces and door rights stay."""
        person = self.people.rename(name, new_name)
        await self.people.async_save()
        return person

    def list_people(self) -> list[dict[str, Any]]:
        """Return every person with sample counts (no embeddings)."""
        return [
            {"name": p.name, "samples": len(p.samples), "negatives": len(p.negatives)}
            for p in sorted(self.people.people.values(), key=lambda p: p.name)
        ]
