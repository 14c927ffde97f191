"""The promotion decision (champion/challenger): only a challenger that is better on the same
test days becomes champion. ("Gate" in Flightline means a data quality gate only.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.results import Result
from tasks.settings import Settings
from tasks.training.registry import Candidate


@dataclass
class Decision(Result):
    promote: bool
    challenger: str
    champion: str | None
    reason: str
    challenger_auc: float
    champion_auc: float | None
    baselines: dict
    alias: dict | None = None  # the champion alias as the decision left it, when it moved
    candidates: dict[str, float] = field(default_factory=dict)  # version -> test ROC AUC


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


def decide_promotion(candidates: list[Candidate], settings: Settings, *, margin: float = 0.002,
                     force: bool = False) -> Decision:
    """The training flow's last step: pick the best candidate (``registry.Candidate``; None for
    a family that did not run), score the champion on the same test days, move the alias or not."""
    from datetime import date

    from tasks.feature_contract import LABEL
    from tasks.features.staging import read_features
    from tasks.training import evaluate, registry

    candidates = [c for c in candidates if c]
    if not candidates:
        raise ValueError("no trained candidate to decide on")
    best = max(candidates, key=lambda c: c.metrics["roc_auc"])
    champ = registry.champion(settings)
    champ_auc = None
    if champ:
        try:
            test_df = read_features([date.fromisoformat(d) for d in best.test_days], settings)
            model = registry.load_model(champ["version"], settings)
            champ_auc = evaluate.metrics(test_df[LABEL].to_numpy(),
                                         model.predict_proba(test_df))["roc_auc"]
        except Exception as exc:  # an unreadable champion must not block a forced promotion
            print(f"champion {champ['version']} could not be scored: {exc}")
    decision = decide(best.version, best.metrics["roc_auc"], best.baselines,
                      champ["version"] if champ else None, champ_auc, margin=margin, force=force)
    if decision.promote:
        decision.alias = registry.set_champion(best.version, decision.reason, settings)
    decision.candidates = {c.version: c.metrics["roc_auc"] for c in candidates}
    return decision
