"""Back-off after repeated door denials, kept per identity so one face cannot block another.

Each identity (an enrolled person, or "doubt" for unknown, ambiguous or crowded frames) has
its own counter: a stranger who keeps walking past the camera backs off only further
doubtful attempts, never an authorized person, while photos of Alice tried again and again
back off Alice. Two budgets start a back-off: a burst (3 denials in a minute) and a paced
attacker (10 in an hour). Each back-off doubles the last one up to the maximum; the level is
forgotten only after a quiet spell that starts when the back-off ends, never during it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BackoffRules:
    """When a back-off starts and how long it lasts."""

    after: int = 3  # denials within ``window_s`` that start a back-off
    window_s: float = 60.0
    hourly: int = 10  # denials within an hour that start one too (a paced attacker)
    first_s: float = 30.0  # the first back-off; each further one doubles, up to ``max_s``
    max_s: float = 900.0
    quiet_s: float = 600.0  # this long after a back-off ends without a denial forgets the level

    def __post_init__(self) -> None:
        """Refuse rules that would never back off."""
        if self.after < 1 or self.hourly < self.after or self.first_s < 0:
            raise ValueError("back-off needs at least one denial and a non-negative time")


HOUR_S = 3600.0


@dataclass(slots=True)
class _Counter:
    """One identity's recent denials and back-off state."""

    denials: list[float] = field(default_factory=list)
    level: int = 0
    until: float = float("-inf")
    last: float = float("-inf")  # the last denial or the end of the last back-off


class Backoff:
    """The back-off state of every identity at one door."""

    def __init__(self, rules: BackoffRules) -> None:
        """Start with nobody backed off."""
        self.rules = rules
        self._counters: dict[str, _Counter] = {}

    def remaining(self, identity: str, now: float) -> float:
        """Return the seconds ``identity`` is still backed off (0 when it is not)."""
        counter = self._counters.get(identity)
        return max(0.0, counter.until - now) if counter else 0.0

    def deny(self, identity: str, now: float) -> bool:
        """Count a denial; return whether it started a back-off."""
        rules = self.rules
        counter = self._counters.setdefault(identity, _Counter())
        if now - counter.last >= rules.quiet_s:
            counter.level = 0
        counter.last = now
        counter.denials = [t for t in counter.denials if now - t <= HOUR_S]
        counter.denials.append(now)
        burst = sum(1 for t in counter.denials if now - t <= rules.window_s)
        if burst < rules.after and len(counter.denials) < rules.hourly:
            return False
        duration = min(rules.first_s * 2**counter.level, rules.max_s)
        counter.level += 1
        counter.until = counter.last = now + duration
        counter.denials.clear()
        return True

    def forget(self, identity: str) -> None:
        """Clear an identity's record (the person got in)."""
        self._counters.pop(identity, None)
