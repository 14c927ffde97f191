"""Champion/challenger gate: promotion only for a challenger that is better on the same days."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Decision:
    promote: bool
    challenger: str
    champion: str | None
    reason: str
    challenger_auc: float
    champion_auc: float | None
    baselines: dict

    def to_dict(self) -> dict:
        return asdict(self)


def decide(challenger: str, challenger_auc: float, baselines: dict[str, float],
           champion: str | None, champion_auc: float | None, *, margin: float = 0.002,
           force: bool = False) -> Decision:
    """Promote when the challenger beats both baselines and the champion (on the same test
    days) by ``margin`` ROC AUC; ``force`` promotes regardless and says so."""
    def make(promote: bool, reason: str) -> Decision:
        return Decision(promote, challenger, champion, reason, challenger_auc, champion_auc, baselines)

    if force:
        return make(True, f"force-promoted by the run's Param (AUC {challenger_auc:.4f})")
    for name, auc in baselines.items():
        if challenger_auc <= auc:
            return make(False, f"challenger AUC {challenger_auc:.4f} does not beat the {name} "
                               f"baseline ({auc:.4f}); champion stays")
    if champion is None:
        return make(True, f"no champion yet; challenger beats the baselines "
                          f"({', '.join(f'{k} {v:.4f}' for k, v in baselines.items())})")
    if champion_auc is None:
        return make(False, f"champion {champion} could not be scored on the same test days; "
                           "champion stays (use force-promote to override)")
    if challenger_auc < champion_auc + margin:
        return make(False, f"challenger AUC {challenger_auc:.4f} does not beat champion {champion} "
                           f"({champion_auc:.4f}) by the margin {margin}; champion stays")
    return make(True, f"challenger AUC {challenger_auc:.4f} beats champion {champion} "
                      f"({champion_auc:.4f}) by {challenger_auc - champion_auc:.4f} >= {margin} "
                      "and both baselines")
