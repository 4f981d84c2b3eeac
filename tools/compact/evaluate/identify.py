"""``identify``: open-set identification with the engine's :class:`Gallery`.

Gallery ``DIR/<person>/*`` is enrolled (the first K images per person, sorted, with
``--enroll-per-person K``; only the first N people with ``--gallery-people N``); every probe
image ``DIR/<person>/*`` is matched. Probes of people absent from the gallery are impostors and
must come back unknown. An enrolled image is never probed, nor a probe image of the same
person with the same file stem (a door-camera frame made from an enrolled close-up, see
``doorcam.py``). Reported: top-1 on known people (closest person, ignoring the threshold), TAR
(known probes matched to the right person), mis (known probes matched to a wrong person), FAR
(impostor probes matched to anyone), unknown rate (impostor probes answered unknown), probes
without a face (``no_face``, and ``found``: the share with one) and TAR among those
(``tar_found``: recognition apart from detection), ms per image by stage, and a result per
probe image.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.face.gallery import Gallery, MatchStatus
from custom_components.compact_ai.engine.face.pipeline import FacePipeline
from tools.compact.errors import ToolError
from tools.compact.evaluate.labels import listed
from tools.compact.evaluate.verify import Timer, embed_primary

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True)
class Split:
    """Which images are enrolled, and which are probed with their true person."""

    enroll: dict[str, list[Path]]
    probes: list[tuple[str, Path]]


def _people(folder: Path, exclude: frozenset[str]) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise ToolError(f"{folder}: not a folder")
    return {
        person.name: sorted(
            p
            for p in person.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not listed(p, exclude)
        )
        for person in sorted(p for p in folder.iterdir() if p.is_dir())
    }


def split(
    gallery: Path,
    probe: Path,
    per_person: int | None,
    gallery_people: int | None,
    exclude: frozenset[str] = frozenset(),
) -> Split:
    """Choose the enrolled and the probe images (none named in ``exclude``)."""
    people = _people(gallery, exclude)
    enrolled = dict(list(people.items())[:gallery_people])
    enroll = {person: images[:per_person] for person, images in enrolled.items()}
    used = {(person, path.stem) for person, images in enroll.items() for path in images}
    probes = [
        (person, path)
        for person, images in _people(probe, exclude).items()
        for path in images
        if (person, path.stem) not in used
    ]
    if not enroll or not probes:
        raise ToolError("nothing to enroll or nothing to probe")
    return Split(enroll, probes)


def evaluate(
    pipeline: FacePipeline, plan: Split, gallery: Gallery, also: tuple[float, ...] = ()
) -> dict[str, Any]:
    """Enroll, match every probe, and return the report with per-image results.

    ``also`` lists more thresholds whose summaries go under ``at_threshold`` (the same
    embeddings matched again).
    """
    timer = Timer()  # probes only: their frames are what the report's ms describe
    for person, images in plan.enroll.items():
        for path in images:
            face = embed_primary(pipeline, path, Timer())
            if face.embedding is not None:
                gallery.add(person, face.embedding)
    probes = [
        (truth, path, embed_primary(pipeline, path, timer).embedding) for truth, path in plan.probes
    ]
    results = match_all(probes, gallery)
    report = {**_summary(results), **timer.report(), "results": results}
    if also:
        report["at_threshold"] = {}
        for threshold in also:
            other = copy.copy(gallery)
            other.threshold = threshold
            report["at_threshold"][f"{threshold:g}"] = _summary(match_all(probes, other))
    return report


def match_all(
    probes: list[tuple[str, Path, np.ndarray | None]], gallery: Gallery
) -> list[dict[str, Any]]:
    """Match each (truth, image, embedding) probe; one result row per probe."""
    results = []
    for truth, path, embedding in probes:
        known = gallery.count(truth) > 0
        row: dict[str, Any] = {"image": str(path), "truth": truth, "known": known}
        if embedding is None:
            row.update(status="no_face", person=None, distance=None, nearest=None)
        else:
            match = gallery.match(embedding)
            nearest = match.candidates[0].person if match.candidates else None
            distance = match.distance if np.isfinite(match.distance) else None
            row.update(status=str(match.status), person=match.person, distance=distance)
            row["nearest"] = nearest
        results.append(row)
    return results


def _rate(rows: list[dict[str, Any]], test: Any) -> float:
    return sum(1 for row in rows if test(row)) / len(rows) if rows else 0.0


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    known = [row for row in results if row["known"]]
    impostors = [row for row in results if not row["known"]]
    matched = MatchStatus.MATCH.value
    no_face = sum(row["status"] == "no_face" for row in results)

    def right(row: dict[str, Any]) -> bool:
        return bool(row["status"] == matched and row["person"] == row["truth"])

    return {
        "probes": len(results),
        "known_probes": len(known),
        "impostor_probes": len(impostors),
        "no_face": no_face,
        "found": 1 - no_face / len(results) if results else 0.0,
        "top1": _rate(known, lambda r: r["nearest"] == r["truth"]),
        "tar": _rate(known, right),
        "tar_found": _rate([r for r in known if r["status"] != "no_face"], right),
        "mis": _rate(known, lambda r: r["status"] == matched and r["person"] != r["truth"]),
        "ambiguous": _rate(results, lambda r: r["status"] == MatchStatus.AMBIGUOUS.value),
        "far": _rate(impostors, lambda r: r["status"] == matched),
        "unknown_rate": _rate(impostors, lambda r: r["status"] == MatchStatus.UNKNOWN.value),
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """Return the lines ``identify`` prints: every probe not matched right, then the rates."""
    lines = [
        f"{row['status']:<9} {row['person'] or '-':<24} {row['image']}"
        for row in report["results"]
        if row["status"] != "match" or row["person"] != row["truth"]
    ]
    return [
        *lines,
        f"{report['enrolled_people']} people enrolled ({report['enrolled_faces']} faces); "
        f"{report['probes']} probes ({report['known_probes']} known, "
        f"{report['impostor_probes']} impostors), {report['no_face']} without a face "
        f"({report['found']:.2%} found)",
        f"known: top-1 {report['top1']:.2%}, TAR {report['tar']:.2%} "
        f"({report['tar_found']:.2%} of those found), "
        f"mis {report['mis']:.2%}; impostors: FAR {report['far']:.2%}, "
        f"unknown {report['unknown_rate']:.2%}; ambiguous {report['ambiguous']:.2%} "
        f"(threshold {report['threshold']:.3f}, margin {report['margin']:.3f})",
    ]
