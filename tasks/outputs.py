"""Where a day's outputs are: one line per zone, for people at the end of a run."""

from __future__ import annotations

from datetime import date

from tasks.settings import Settings, zones
from tasks.storage import Store, join


def outputs_for(day: date, settings: Settings) -> dict[str, list[str]]:
    """For each zone, the URIs that exist for ``day`` (partitions, reports, models)."""
    from tasks.flows.steps import flows

    flows()  # the zones the declared steps write, too
    store = Store(settings)
    found: dict[str, list[str]] = {}
    for zone in zones():
        base = settings.zone(zone)
        part = settings.partition(zone, day)
        uris = []
        if store.list(part):
            uris.append(part)
        for name in store.list(base):
            if name.startswith("dt="):
                continue
            if name.startswith("."):
                continue
            sub = join(base, name)
            daily = join(sub, f"dt={day.isoformat()}")
            uris.append(daily if store.list(daily) else sub)
        if uris:
            found[zone] = uris
    return found
