"""The serving flow: the champion packaged as a Bento, checked on a live server, released.

The training DAG runs these two steps after ``decide_promotion`` (its flow borrows them):
``package_champion`` acts only when the champion is not the released version (it just moved, or
was never released): ``bentoml build``, archived into the model store; ``check_and_release``
starts ``bentoml serve`` on loopback (parity with the offline model, p99 latency, bad requests),
then moves the ``released`` alias (else it stays). The steps, as :data:`FLOW` declares them:

"""

from __future__ import annotations

from tasks.flows.steps import Flow, Pod, step
from tasks.serving.check import Release, check_and_release
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
    step(check_and_release, "bentoml serve on loopback: parity, p99, bad requests; then the "
         "released alias moves", pod=Pod(cpu="2", memory="3Gi"), writes=("models",)),
])
__doc__ += FLOW.table()


def run_release(settings: Settings, *, version: str | None = None) -> dict:
    """Package a version (default: the champion, when it is not released yet) and check it."""
    packaged = package_version(version, settings) if version else package_champion(None, settings)
    if packaged is None:
        return {"released": registry.released(settings), "packaged": None}
    release: Release = check_and_release(packaged, settings)
    return {"packaged": packaged.to_dict(), "release": release.to_dict()}
