"""Label-free distillation: a pruned student learns to give its teacher's embeddings.

No labels: the loss is the cosine distance between the student's and the teacher's normalized
embeddings of the same chip, so any face photo teaches (``faces_train``: identities in no
evaluation set). The student is an ONNX graph (a pruned copy of the teacher) whose weights are
trained with JAX (``onnx_jax``); the result is an ONNX graph again. Each photo gives the
engine's chip and a jittered, mirrored one; the teacher sees those, the student also sees them
with random brightness, contrast and greyscale (a doorbell's night IR). With ``Recipe.mix``
part of each batch is blended with other faces and the teacher, run alongside, gives its
embedding of each blend (new inputs every epoch: fixed targets are fitted more closely than
faces never seen). Training keeps a checkpoint after every epoch, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tools.compact.errors import ToolError
from tools.compact.train.onnx_jax import JaxGraph

INSTALL = "pip install -r requirements_train.txt"  # JAX, CPU only (PyPI)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the student's weights besides the data and the student."""

    epochs: int = 3
    batch: int = 32
    learning_rate: float = 1e-3  # Adam, cosine decay to 0 over the run
    seed: int = 0
    per_image: int = 2  # the engine's chip and a jittered, mirrored one
    jitter: float = 0.05
    mix: float = 0.0  # share of each batch blended with another face; the teacher sees it too

    def __post_init__(self) -> None:
        """Refuse a share that is no share (blends planned for chips not there) and no chips."""
        if self.per_image < 1:
            raise ToolError(f"--per-image is how many chips each photo gives, not {self.per_image}")
        if not 0.0 <= self.mix <= 1.0:
            raise ToolError(f"--mix is a share of each batch, 0 to 1, not {self.mix}")
        if self.mix and round(self.mix * self.batch) == 0:
            raise ToolError(f"--mix {self.mix} blends no chip of a batch of {self.batch}")


@dataclass
class TrainingSet:
    """Chips ([N, 3, size, size] uint8 RGB) of a folder's photos, and what was skipped."""

    chips: np.ndarray
    images: int
    unreadable: list[str] = field(default_factory=list)
    without_face: list[str] = field(default_factory=list)
    data_sha256: str = ""  # of the sorted "path sha256" lines of every file read


@dataclass
class Teacher:
    """The teacher net and its chips of the same faces and jitters as the student's."""

    model: onnx.ModelProto
    chips: np.ndarray


@dataclass
class Distilled:
    """The trained student, its loss per epoch and the epoch it resumed from."""

    model: onnx.ModelProto
    losses: list[float]
    resumed_from: int


def require_jax() -> Any:
    """Return the ``jax`` module, or say how to install it (it is never a dependency)."""
    try:
        import jax
    except ImportError as err:
        raise ToolError(f"distillation needs JAX, an optional extra: {INSTALL}") from err
    return jax


def training_set(
    photos: list[Path], chipper: Any, per_image: int, jitter: float, progress: bool = False
) -> TrainingSet:
    """Cut chips from ``photos`` as the engine would; unreadable or faceless ones are counted."""
    from PIL import Image, UnidentifiedImageError

    from tools.compact.progress import progress_bar

    chips: list[np.ndarray] = []
    result = TrainingSet(np.empty(0, np.uint8), len(photos))
    lines = []
    for index, path in enumerate(progress_bar(photos, "training chips", progress)):
        data = path.read_bytes()
        lines.append(f"{path.name} {hashlib.sha256(data).hexdigest()}")
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError):
            result.unreadable.append(str(path))
            continue
        found = chipper.chips(rgb, per_image, jitter, seed=index)
        if not found:
            result.without_face.append(str(path))
        chips += found
    if not chips:
        raise ToolError("no face was found in the training photos")
    result.chips = np.stack(chips).transpose(0, 3, 1, 2).copy()
    result.data_sha256 = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    return result


def normalized(embeddings: np.ndarray) -> np.ndarray:
    """Return the rows scaled to unit length (the engine compares SFace embeddings so)."""
    scaled: np.ndarray = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return scaled


def augment(chips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness and contrast (x0.8-1.2 each) and greyscale for one chip in five."""
    x = chips.astype(np.float32)
    n = len(x)
    grey = rng.random(n) < 0.2
    x[grey] = x[grey].mean(axis=1, keepdims=True)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
    out: np.ndarray = np.clip((x - mean) * contrast + mean * brightness, 0, 255)
    return out


def blend(
    chips: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return which chips to blend, with which partner and weight (the partner's is 1 - w).

    A partner is any chip of the batch: now and then the chip itself (no blend) or its
    mirrored copy. A blend of two chips is the same blend at any chip size (resampling is
    linear), so the teacher's embedding of its blend is a target for the student's, and every
    epoch brings faces neither has seen: the fixed targets of the same chips let the student
    fit them more closely than it generalizes.
    """
    n = len(chips)
    count = round(share * n)  # always as many: the teacher's compiled step keeps its shape
    mixed = np.sort(rng.permutation(n)[:count])
    partner = rng.permutation(n)[:count]
    weight = rng.uniform(0.5, 1.0, count).astype(np.float32)
    return mixed, partner, weight


def blended(chips: np.ndarray, plan: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Return ``chips`` (float32) with the planned blends applied."""
    mixed, partner, weight = plan
    x = chips.astype(np.float32)
    w = weight[:, None, None, None]
    x[mixed] = w * x[mixed] + (1 - w) * x[partner]
    return x


def with_blends(
    chips: np.ndarray,
    targets: np.ndarray,
    teacher_chips: np.ndarray,
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    embed: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``chips`` blended as planned, and their targets.

    A blend's target is ``embed`` of the teacher's chips of the same faces blended alike; the
    other chips keep ``targets``.
    """
    mixed = plan[0]
    goal = targets.copy()
    if len(mixed):  # a batch smaller than one blend's share (a tiny training set)
        goal[mixed] = embed(blended(teacher_chips, plan)[mixed])
    return blended(chips, plan), goal


def _embedding(model: onnx.ModelProto) -> Callable[[np.ndarray], np.ndarray]:
    """Return the compiled net giving ``model``'s normalized embeddings of chips."""
    jax = require_jax()
    import jax.numpy as jnp

    graph = JaxGraph(model)

    @jax.jit  # type: ignore[untyped-decorator,unused-ignore]
    def embed(x: Any) -> Any:
        e = graph.apply(graph.params, x)
        return e / jnp.linalg.norm(e, axis=1, keepdims=True)

    return lambda x: np.asarray(embed(x))


def _checkpoint_key(student: onnx.ModelProto, targets: np.ndarray, recipe: Recipe) -> str:
    digest = hashlib.sha256(student.SerializeToString())
    digest.update(targets.tobytes())
    digest.update(json.dumps(asdict(recipe), sort_keys=True).encode())
    return digest.hexdigest()[:24]


def _save(path: Path, key: str, epoch: int, losses: list[float], state: dict[str, Any]) -> None:
    arrays: dict[str, Any] = {
        f"{part}/{name}": np.asarray(v) for part, tree in state.items() for name, v in tree.items()
    }
    arrays["meta"] = np.array(json.dumps({"key": key, "epoch": epoch, "losses": losses}))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load(path: Path, key: str) -> tuple[int, list[float], dict[str, dict[str, np.ndarray]]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            state: dict[str, dict[str, np.ndarray]] = {"params": {}, "m": {}, "v": {}}
            for name in data.files:
                if name != "meta":
                    part, _, weight = name.partition("/")
                    state[part][weight] = data[name]
    except (OSError, ValueError, KeyError):
        return None  # a damaged checkpoint: start again
    if meta.get("key") != key:
        return None
    return int(meta["epoch"]), list(meta["losses"]), state


def distill(
    student: onnx.ModelProto,
    chips: np.ndarray,
    targets: np.ndarray,
    recipe: Recipe,
    checkpoint: Path | None = None,
    say: Callable[[str], None] = lambda line: None,
    teacher: Teacher | None = None,
) -> Distilled:
    """Train ``student`` so that its normalized embeddings of ``chips`` match ``targets``.

    With ``recipe.mix`` a share of each batch is blended with other faces and ``teacher``
    gives the targets of those blends as training goes.
    """
    jax = require_jax()
    import jax.numpy as jnp

    if recipe.mix and teacher is None:
        raise ToolError("blending faces needs the teacher's net and chips")
    if teacher is not None and len(teacher.chips) != len(chips):
        raise ToolError("the teacher's chips are not the student's faces: delete the distill cache")
    graph = JaxGraph(student)
    key = _checkpoint_key(student, targets, recipe)
    steps_per_epoch = max(1, len(chips) // recipe.batch)
    total = steps_per_epoch * recipe.epochs

    def loss(params: dict[str, Any], x: Any, t: Any) -> Any:
        e = graph.apply(params, x)
        e = e / jnp.linalg.norm(e, axis=1, keepdims=True)
        return jnp.mean(1 - jnp.sum(e * t, axis=1))

    @jax.jit  # type: ignore[untyped-decorator,unused-ignore]
    def step(state: dict[str, Any], i: Any, x: Any, t: Any) -> tuple[dict[str, Any], Any]:
        value, grads = jax.value_and_grad(loss)(state["params"], x, t)
        rate = recipe.learning_rate * 0.5 * (1 + jnp.cos(jnp.pi * i / total))
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, state["m"], grads)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, state["v"], grads)
        k = i + 1
        params = jax.tree.map(
            lambda p, m, v: p - rate * (m / (1 - 0.9**k)) / (jnp.sqrt(v / (1 - 0.999**k)) + 1e-8),
            state["params"], m, v,
        )  # fmt: skip
        return {"params": params, "m": m, "v": v}, value

    embed_teacher = _embedding(teacher.model) if teacher is not None and recipe.mix else None
    zeros = {name: np.zeros_like(value) for name, value in graph.params.items()}
    state: dict[str, Any] = {"params": dict(graph.params), "m": zeros, "v": dict(zeros)}
    first, losses = 0, list[float]()
    kept = _load(checkpoint, key) if checkpoint else None
    if kept is not None:
        first, losses, state = kept
        say(f"distill: resuming after epoch {first} ({checkpoint})")
    for epoch in range(first, recipe.epochs):
        rng = np.random.default_rng(recipe.seed + epoch)
        order = rng.permutation(len(chips))
        started, values = time.perf_counter(), []
        for s in range(steps_per_epoch):
            batch = order[s * recipe.batch : (s + 1) * recipe.batch]
            x, goal = chips[batch], targets[batch]
            if teacher is not None and embed_teacher is not None:
                plan = blend(x, recipe.mix, rng)
                x, goal = with_blends(x, goal, teacher.chips[batch], plan, embed_teacher)
            x = augment(x, rng)
            state, value = step(state, epoch * steps_per_epoch + s, x, goal)
            values.append(float(value))
        losses.append(float(np.mean(values)))
        if checkpoint:
            _save(checkpoint, key, epoch + 1, losses, state)
        say(
            f"distill: epoch {epoch + 1}/{recipe.epochs} loss {losses[-1]:.4f} "
            f"({time.perf_counter() - started:.0f} s)"
        )
    return Distilled(graph.to_onnx(state["params"]), losses, first)


def mean_loss(model: onnx.ModelProto, chips: np.ndarray, targets: np.ndarray) -> float:
    """Return the distillation loss of ``model`` on ``chips`` (onnxruntime, no augmentation)."""
    from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
    from tools.compact.pack.heldout import embed

    runner = OnnxruntimeModel(model.SerializeToString(), name="student")
    embeddings = normalized(embed(runner, chips.astype(np.float32)))
    return float(np.mean(1 - np.sum(embeddings * targets, axis=1)))
