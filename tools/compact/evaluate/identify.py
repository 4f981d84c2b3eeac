"""``identify``: open-set identification with the engine's :class:`Gallery`.

Gallery ``DIR/<person>/*`` is enrolled (the first K images per person, sorted, with
``--enroll-per-person K``; only the first N people with ``--gallery-people N``); every probe
image ``DIR/<person>/*`` is matched. Probes of people absent from the gallery are impostors and
must come back unknown. When gallery and probe are the same folder, enrolled images are not
probed. Reported: top-1 on known people (closest person, ignoring the threshold), TAR (known
probes matched to the right person), mis (known probes matched to a wrong person), FAR
(impostor probes matched to anyone), unknown rate (impostor probes answered unknown), faces
not found, and a result per probe image.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.face.gallery import DEFAULT_MARGIN, Gallery, MatchStatus
from custom_components.compact_ai.engine.face.pipeline import FacePipeline
from tools.compact.errors import ToolError
from tools.compact.evaluate.verify import (
    Timer,
    add_model_arguments,
    embed_primary,
    load_face_pipeline,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True)
class Split:
    """Which images are enrolled, and which are probed with their true person."""

    enroll: dict[str, list[Path]]
    probes: list[tuple[str, Path]]


def _people(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise ToolError(f"{folder}: not a folder")
    return {
        person.name: sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for person in sorted(p for p in folder.iterdir() if p.is_dir())
    }


def split(gallery: Path, probe: Path, per_person: int | None, gallery_people: int | None) -> Split:
    """Choose the enrolled and the probe images."""
    people = _people(gallery)
    enrolled = dict(list(people.items())[:gallery_people])
    enroll = {person: images[:per_person] for person, images in enrolled.items()}
    used = {path for images in enroll.values() for path in images}
    probes = [
        (person, path)
        for person, images in _people(probe).items()
        for path in images
        if path not in used
    ]
    if not enroll or not probes:
        raise ToolError("nothing to enroll or nothing to probe")
    return Split(enroll, probes)


def evaluate(pipeline: FacePipeline, plan: Split, gallery: Gallery) -> dict[str, Any]:
    """Enroll, match every probe, and return the report with per-image results."""
    timer = Timer()
    for person, images in plan.enroll.items():
        for path in images:
            face = embed_primary(pipeline, path, timer)
            if face.embedding is not None:
                gallery.add(person, face.embedding)
    results = []
    for truth, path in plan.probes:
        face = embed_primary(pipeline, path, timer)
        known = gallery.count(truth) > 0
        row: dict[str, Any] = {"image": str(path), "truth": truth, "known": known}
        if face.embedding is None:
            row.update(status="no_face", person=None, distance=None, nearest=None)
        else:
            match = gallery.match(face.embedding)
            nearest = match.candidates[0].person if match.candidates else None
            distance = match.distance if np.isfinite(match.distance) else None
            row.update(status=str(match.status), person=match.person, distance=distance)
            row["nearest"] = nearest
        results.append(row)
    return {**_summary(results), **timer.report(), "results": results}


def _rate(rows: list[dict[str, Any]], test: Any) -> float:
    return sum(1 for row in rows if test(row)) / len(rows) if rows else 0.0


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    known = [row for row in results if row["known"]]
    impostors = [row for row in results if not row["known"]]
    matched = MatchStatus.MATCH.value
    return {
        "probes": len(results),
        "known_probes": len(known),
        "impostor_probes": len(impostors),
        "no_face": sum(row["status"] == "no_face" for row in results),
        "top1": _rate(known, lambda r: r["nearest"] == r["truth"]),
        "tar": _rate(known, lambda r: r["status"] == matched and r["person"] == r["truth"]),
        "mis": _rate(known, lambda r: r["status"] == matched and r["person"] != r["truth"]),
        "ambiguous": _rate(results, lambda r: r["status"] == MatchStatus.AMBIGUOUS.value),
        "far": _rate(impostors, lambda r: r["status"] == matched),
        "unknown_rate": _rate(impostors, lambda r: r["status"] == MatchStatus.UNKNOWN.value),
    }


def _run(args: argparse.Namespace) -> int:
    plan = split(args.gallery, args.probe, args.enroll_per_person, args.gallery_people)
    pipeline, threshold = load_face_pipeline(args.tier, args.pack, args.backend, args.detector)
    threshold = args.threshold if args.threshold is not None else threshold
    gallery = Gallery(threshold=threshold, margin=args.margin)
    report = evaluate(pipeline, plan, gallery)
    report.update(
        tier=args.tier,
        backend=args.backend,
        detector=args.detector,
        threshold=threshold,
        margin=args.margin,
        enrolled_people=len(gallery.people),
        enrolled_faces=sum(gallery.count(person) for person in gallery.people),
    )
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    for row in report["results"]:
        if row["status"] != "match" or row["person"] != row["truth"]:
            print(f"{row['status']:<9} {row['person'] or '-':<24} {row['image']}")
    print(
        f"{report['enrolled_people']} people enrolled ({report['enrolled_faces']} faces); "
        f"{report['probes']} probes ({report['known_probes']} known, "
        f"{report['impostor_probes']} impostors), {report['no_face']} without a face\n"
        f"known: top-1 {report['top1']:.2%}, TAR {report['tar']:.2%}, "
        f"mis {report['mis']:.2%}; impostors: FAR {report['far']:.2%}, "
        f"unknown {report['unknown_rate']:.2%}; ambiguous {report['ambiguous']:.2%} "
        f"(threshold {threshold:.3f}, margin {args.margin:.3f})"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``identify`` subcommand."""
    parser = subparsers.add_parser("identify", help="open-set identification against a gallery")
    add_model_arguments(parser)
    parser.add_argument("--gallery", type=Path, required=True, help="DIR/<person>/* to enroll")
    parser.add_argument("--probe", type=Path, required=True, help="DIR/<person>/* to identify")
    parser.add_argument("--enroll-per-person", type=int, default=None, metavar="K")
    parser.add_argument(
        "--gallery-people", type=int, default=None, metavar="N", help="enroll the first N only"
    )
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    parser.set_defaults(func=_run)
