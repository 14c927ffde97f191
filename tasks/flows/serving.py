"""The serving flow: the champion packaged as a Bento, checked on a live server, approved,
released.

The training DAG runs these steps after ``decide_promotion`` (its flow borrows them):
``package_champion`` acts only when the champion is not the released version (it just moved, or
was never released): ``bentoml build``, archived into the model store; ``check_serving`` starts
``bentoml serve`` on loopback (parity with the offline model, p99 latency, bad requests) and
scores the released model on the same test days; ``approve_release`` is the release decision
(a person in the Airflow UI when approval is on, :mod:`tasks.serving.approval`); ``release``
moves the ``released`` alias when approved (else it stays) and keeps the decision in the release
history. The steps, as :data:`FLOW` declares them:

"""

from __future__ import annotations

from tasks.flows.steps import Flow, Pod, step
from tasks.serving.approval import approve_release, release
from tasks.serving.check import Release, check_serving
from tasks.serving.package import Packaged, package_version
from tasks.settings import Settings
from tasks.training import registry
from tasks.training.promotion import Decision

__all__ = ["FLOW", "check_and_release", "package_champion", "run_release"]


def package_champion(decision: Decision | None, settings: Settings) -> Packaged | None:
    """Package the champion if the released Bento does not already serve it; None otherwise."""
    champ = registry.champion(settings)
    if champ is None:
        return None
    rel = registry.released(settings)
    if rel and rel["version"] == champ["version"]:
        print(f"champion {champ['version']} is already released as {rel['bento']}; nothing to package"
              + (" (this run did not move the champion)" if decision and not decision.promote else ""))
        return None
    return package_version(champ["version"], settings)


FLOW = Flow("serving", steps=[
    step(package_champion, "the champion as a Bento, archived in the model store; None when "
         "it is already released", pod=Pod(cpu="1", memory="2Gi"), writes=("models",)),
    step(check_serving, "bentoml serve on loopback: parity, p99, bad requests; the released "
         "model scored on the same test days", pod=Pod(cpu="2", memory="3Gi"), writes=("models",)),
    step(approve_release, "the release decision: a person in the Airflow UI when approval is "
         "on; approved at once when off or auto"),
    step(release, "the released alias moves when approved; the decision joins the release "
         "history either way", writes=("models",)),
])
__doc__ += FLOW.table()


def run_release(settings: Settings, *, version: str | None = None) -> dict:
    """Package a version (default: the champion, when it is not released yet) and check it."""
    packaged = package_version(version, settings) if version else package_champion(None, settings)
    if packaged is None:
        return {"released": registry.released(settings), "packaged": None}
    done = check_and_release(packaged, settings)
    return {"packaged": packaged.to_dict(), "release": done.to_dict() if done else None}


def check_and_release(packaged: Packaged, settings: Settings, *, approval: str = "off") -> Release | None:
    """The serving check, the decision without a person (``off`` or ``auto``), the release."""
    checked = check_serving(packaged, settings)
    return release(checked, approve_release(checked, settings, mode=approval), settings)
