"""Blend weights chosen on the validation window by coordinate search."""

from collections.abc import Callable, Mapping

from perkrank.progress import Counter

WEIGHT_STEPS: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Values tried for each weight, relative to the others."""
ROUNDS = 2


def choose_weights(
    metric_of: Callable[[Mapping[str, float]], float],
    initial: Mapping[str, float],
    *,
    steps: tuple[float, ...] = WEIGHT_STEPS,
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Weights maximizing `metric_of(weights)`, varying one component at a time.

    Starts from `initial` and, for `rounds` passes over the components, keeps the value of
    `steps` that scores best for each (ties keep the current value). At least one weight stays
    non-zero. `metric_of` is called once per distinct candidate; each call is reported to
    stderr ("weight search 12/49", at most 1 + rounds · components · steps candidates).
    """
    best = dict(initial)
    seen: dict[tuple[float, ...], float] = {}
    progress = Counter("weight search", 1 + rounds * len(best) * len(steps))

    def score(weights: Mapping[str, float]) -> float:
        key = tuple(weights[name] for name in best)
        if key not in seen:
            seen[key] = metric_of(weights)
            progress.advance(f"{dict(weights)} → {seen[key]:.4f}")
        return seen[key]

    best_score = score(best)
    for _ in range(rounds):
        for name in best:
            for value in steps:
                candidate = best | {name: value}
                if not any(candidate.values()):
                    continue
                candidate_score = score(candidate)
                if candidate_score > best_score:
                    best, best_score = candidate, candidate_score
    return best
