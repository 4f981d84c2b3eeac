"""The head: a few small MLPs on pooled speech features, trained and calibrated in numpy.

The threshold is calibrated on voice families held out of a first training run, as the
score that lets :attr:`.Plan.accept` of their phrase clips through (real voices score lower
than any synthetic one, so the ``_unknown_`` class does the rejecting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import TrainingError
from ..commands import CommandHead

DEFAULT_THRESHOLD = 0.5  # when there is nothing to calibrate on (recordings only)
MIN_THRESHOLD, MAX_THRESHOLD = 0.2, 0.9  # below 0.2 noise starts to pass as commands
BATCH = 128


def train_head(
    x: np.ndarray, y: np.ndarray, classes: int, *, hidden: int, epochs: int, seed: int,
    members: int = 1, unknown_weight: float = 1.0,
) -> CommandHead:  # fmt: skip
    """Train ``members`` MLPs (seeds ``seed``, ``seed + 1``, ...) on the same standardisation.

    Each learns with Adam on class-balanced cross-entropy (numpy only): every class weighs the
    same in total, ``_unknown_`` (the last) ``unknown_weight`` times.
    """
    if members < 1:
        raise TrainingError(f"a head needs at least one member, not {members}")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    xs = ((x - mean) / scale).astype(np.float32)
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    class_weight = len(y) / (classes * np.maximum(counts, 1.0))
    class_weight[-1] *= unknown_weight
    trained = [
        _train_member(xs, y, class_weight, hidden, epochs, seed + member)
        for member in range(members)
    ]
    stacked = {name: np.stack([params[name] for params in trained]) for name in trained[0]}
    return CommandHead(mean=mean.astype(np.float32), scale=scale.astype(np.float32), **stacked)


def merge_heads(heads: Sequence[CommandHead]) -> CommandHead:
    """Return one head averaging all members of ``heads`` (same phrases, same features).

    Heads trained on independently synthesized data each standardise with their own data's
    mean and scale; every member is re-expressed in the first head's standardisation
    (``w0`` rescaled, the shift folded into ``b0``), so it computes exactly what it did.
    """
    if not heads:
        raise TrainingError("nothing to merge")
    base = heads[0]
    shape = (base.inputs, base.hidden, base.classes)
    if any((h.inputs, h.hidden, h.classes) != shape for h in heads):
        raise TrainingError("only heads of the same inputs, hidden size and classes can be merged")
    w0, b0 = [], []
    for head in heads:
        ratio = (base.scale / head.scale)[np.newaxis, :, np.newaxis]
        shift = (base.mean - head.mean) / head.scale
        w0.append(head.w0 * ratio)
        b0.append(head.b0 + np.einsum("d,mdh->mh", shift, head.w0))
    return CommandHead(
        mean=base.mean,
        scale=base.scale,
        w0=np.concatenate(w0).astype(np.float32),
        b0=np.concatenate(b0).astype(np.float32),
        w1=np.concatenate([h.w1 for h in heads]),
        b1=np.concatenate([h.b1 for h in heads]),
    )


def _train_member(
    xs: np.ndarray, y: np.ndarray, class_weight: np.ndarray, hidden: int, epochs: int, seed: int
) -> dict[str, np.ndarray]:
    """Train one MLP on standardised features; return its weights."""
    rng = np.random.default_rng(seed)
    classes, width = len(class_weight), xs.shape[1]
    params = {
        "w0": (rng.standard_normal((width, hidden)) * np.sqrt(2 / width)).astype(np.float32),
        "b0": np.zeros(hidden, np.float32),
        "w1": (rng.standard_normal((hidden, classes)) * np.sqrt(1 / hidden)).astype(np.float32),
        "b1": np.zeros(classes, np.float32),
    }
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    lr, beta1, beta2, decay, step = 1e-3, 0.9, 0.999, 1e-4, 0
    onehot = np.eye(classes, dtype=np.float32)[y]
    for _epoch in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            xb = xs[batch] + rng.standard_normal((len(batch), width)).astype(np.float32) * 0.1
            pre = xb @ params["w0"] + params["b0"]
            mask = (rng.random(pre.shape) > 0.2).astype(np.float32) / 0.8  # dropout
            h = np.maximum(pre, 0) * mask
            logits = h @ params["w1"] + params["b1"]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            w = class_weight[y[batch]][:, None] / len(batch)
            dlogits = (p - onehot[batch]) * w
            dh = (dlogits @ params["w1"].T) * (pre > 0) * mask
            grads = {
                "w1": h.T @ dlogits + decay * params["w1"],
                "b1": dlogits.sum(axis=0),
                "w0": xb.T @ dh + decay * params["w0"],
                "b0": dh.sum(axis=0),
            }
            step += 1
            for name, grad in grads.items():
                m, v = moments[name]
                m[:] = beta1 * m + (1 - beta1) * grad
                v[:] = beta2 * v + (1 - beta2) * grad**2
                m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
                params[name] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    return params


def rates(head: CommandHead, x: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """Return phrase accuracy and unknown rejection of ``head`` at ``threshold``."""
    unknown = head.classes - 1
    p = head.probabilities(x)
    best = p[:, :-1].argmax(axis=1)
    accepted = p[np.arange(len(p)), best] >= threshold
    predicted = np.where(accepted, best, unknown)
    positive = y != unknown
    return {
        "phrase_accuracy": float(np.mean(predicted[positive] == y[positive])),
        "unknown_rejection": float(np.mean(predicted[~positive] == unknown)),
    }


def calibrate(head: CommandHead, x: np.ndarray, y: np.ndarray, accept: float) -> float:
    """Return the threshold that accepts ``accept`` of the phrase clips of unseen voices.

    Calibrating on the phrases, not on a trade-off with the negatives: voices the head never
    heard (real people) score lower than held-out synthetic ones, so a threshold that merely
    balances TTS accuracy against TTS rejection turns real commands away. Rejection comes
    from the ``_unknown_`` class; the threshold only drops what is not clearly a phrase.
    """
    unknown = head.classes - 1
    p = head.probabilities(x[y != unknown])
    scores = p[:, :-1].max(axis=1)
    if not len(scores):
        return DEFAULT_THRESHOLD
    threshold = float(np.quantile(scores, 1.0 - accept))
    return round(min(max(threshold, MIN_THRESHOLD), MAX_THRESHOLD), 3)


def validation_families(families: Sequence[str], seed: int) -> set[str]:
    """Pick one voice family per engine (when it has more than one) for calibration."""
    by_engine: dict[str, list[str]] = {}
    for family in sorted(set(families)):
        if ":" in family:
            by_engine.setdefault(family.split(":")[0], []).append(family)
    rng = np.random.default_rng(seed)
    return {str(rng.choice(names)) for names in by_engine.values() if len(names) > 1}
