"""Spot prices and the cheapest capacity that fits the training job.

**Prices.** With AWS credentials (or an ``ec2_endpoint_url`` such as a moto server), the spot
price history of the candidate instance types (``cost_instance_types``) in the candidate zones
(``cost_zones``) is read with ``describe_spot_price_history``, every page, over the last
``cost_lookback_days``. On-demand prices, GPU counts and GPU memory come from the catalog in the
price snapshot (:data:`SNAPSHOT`). Without credentials the snapshot's own dated spot history is
used and the choice says so. Missing, stale or malformed price data is an error that names what
is wrong (:class:`PriceDataError`), never a silent zero; throttling and connection errors are
:class:`TransientPriceError` (the task retries them).

**The rule.** Among (type, zone) pairs that fit the job (GPUs, GPU memory per GPU, vCPUs), each
spot pair is judged by its *risk-adjusted hourly price*::

    max(latest, mean) x (1 + coefficient of variation) x (1 + interruption frequency)

over the look-back window: the price paid now or typically, whichever is higher, marked up by
how much it swings and by how often the type is reclaimed (the Spot Instance Advisor's bucket,
where known), since an interruption costs rework. The lowest wins; when even that is not below
the cheapest fitting on-demand price, or when on-demand is asked for (after repeated
interruptions), on-demand capacity of the cheapest fitting type is chosen instead.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.results import Result
from tasks.settings import Settings

log = logging.getLogger(__name__)

#: The dated catalog and price snapshot kept in the project (see its ``about``).
SNAPSHOT = Path(__file__).with_name("price-snapshot.json")

#: Interruption-frequency buckets (Spot Instance Advisor) as the rate the rule charges.
INTERRUPTION_RATES = {"<5%": 0.025, "5-10%": 0.075, "10-15%": 0.125, "15-20%": 0.175, ">20%": 0.25}

#: botocore error codes that mean "try again", not "bad data".
TRANSIENT_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "InternalError",
                   "ServiceUnavailable", "Unavailable", "InternalFailure"}


class PriceDataError(ValueError):
    """Price data that cannot be used (none in the window, malformed, non-positive)."""


class TransientPriceError(RuntimeError):
    """The price endpoint is throttling or unreachable: retry."""


class NoCapacityFits(ValueError):
    """No candidate instance type meets the job's requirement."""


@dataclass(frozen=True)
class Requirement:
    """What the training job needs of one machine."""

    gpus: int = 1
    gpu_memory_gib: int = 16
    vcpus: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> Requirement:
        return cls(gpus=settings.cost_job_gpus, gpu_memory_gib=settings.cost_job_gpu_memory_gib,
                   vcpus=settings.cost_job_vcpus)


@dataclass
class Candidate:
    instance_type: str
    zone: str
    latest: float
    mean: float
    cv: float  # coefficient of variation over the window
    interruption: str | None
    score: float  # the risk-adjusted hourly price
    points: int


@dataclass
class Capacity(Result):
    """The choice handed to the training step (and the Kubernetes placement)."""

    instance_type: str
    zone: str | None
    capacity_type: str  # "spot" or "on-demand"
    hourly_usd: float  # what an hour of it is expected to cost (the latest spot price)
    on_demand_usd: float  # the same type on demand
    gpus: int
    gpu_memory_gib: int
    vcpus: int
    source: str  # "live <region> <endpoint>" or "snapshot <date>"
    reason: str
    window: dict = field(default_factory=dict)  # start, end (ISO) of the prices judged
    runners_up: list[dict] = field(default_factory=list)


def load_snapshot(path: Path = SNAPSHOT) -> dict:
    return json.loads(Path(path).read_text())


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parse_points(raw: list[dict], where: str) -> list[tuple[str, str, datetime, float]]:
    out = []
    for i, p in enumerate(raw):
        try:
            price = float(p["SpotPrice"])
            ts = p["Timestamp"]
            ts = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
            itype, zone = p["InstanceType"], p["AvailabilityZone"]
        except (KeyError, TypeError, ValueError) as exc:
            raise PriceDataError(f"{where}: price entry {i} is malformed ({exc!r}): {p}") from None
        if not math.isfinite(price) or price <= 0:
            raise PriceDataError(f"{where}: price entry {i} has a non-positive price {p['SpotPrice']!r} "
                                 f"({itype} in {zone} at {ts})")
        out.append((itype, zone, ts if ts.tzinfo else ts.replace(tzinfo=UTC), price))
    return out


def has_credentials(settings: Settings) -> bool:
    """Whether live prices are asked for: ``cost_price_source`` says so (``live``), or, with
    ``auto``, an explicit endpoint or AWS credentials are there (``snapshot`` never asks: e.g.
    storage credentials that are not AWS's, as in docker-compose.yaml)."""
    if settings.cost_price_source != "auto":
        return settings.cost_price_source == "live"
    if settings.ec2_endpoint_url:
        return True
    import boto3

    return boto3.session.Session().get_credentials() is not None


def fetch_history(types: list[str], zones: list[str], start: datetime, end: datetime,
                  settings: Settings, *, page_size: int = 1000) -> tuple[list[dict], int]:
    """Every page of the spot price history; returns (entries, pages).

    One paginated stream per instance type, read concurrently: pages are a round trip each,
    and the endpoint's work overlaps the parsing of the pages already received."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    client = boto3.client("ec2", region_name=settings.aws_region,
                          endpoint_url=settings.ec2_endpoint_url or None,
                          config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                        max_pool_connections=max(10, len(types))))

    def one(itype: str) -> tuple[list[dict], int]:
        return _pages(client, itype, zones, start, end, page_size)

    with ThreadPoolExecutor(max_workers=min(8, len(types)) or 1) as pool:
        results = list(pool.map(one, types))
    return [e for entries, _ in results for e in entries], sum(p for _, p in results)


def _pages(client, itype: str, zones: list[str], start: datetime, end: datetime,
           page_size: int) -> tuple[list[dict], int]:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    entries, pages = [], 0
    try:
        paginator = client.get_paginator("describe_spot_price_history")
        for page in paginator.paginate(
                InstanceTypes=[itype], ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
                Filters=[{"Name": "availability-zone", "Values": zones}],
                StartTime=start, EndTime=end, PaginationConfig={"PageSize": page_size}):
            pages += 1
            entries.extend(page.get("SpotPriceHistory", []))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_CODES or status >= 500:
            raise TransientPriceError(f"spot price history: {code or status}: {exc}") from exc
        raise PriceDataError(f"spot price history refused ({code}): {exc}; check the credentials' "
                             "ec2:DescribeSpotPriceHistory permission and the region") from exc
    except (EndpointConnectionError, BotoCoreError) as exc:
        raise TransientPriceError(f"spot price history: {exc}") from exc
    return entries, pages


def judge(points: list[tuple[str, str, datetime, float]], catalog: dict, start: datetime,
          end: datetime) -> list[Candidate]:
    """Risk-adjusted candidates from the price points inside [start, end], cheapest first.

    AWS records a price when it changes, so the price in force at ``start`` is the last point
    before it: that one is kept as the window's first price."""
    by_pair: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for itype, zone, ts, price in points:
        if ts <= end:
            by_pair.setdefault((itype, zone), []).append((ts, price))
    out = []
    for (itype, zone), series in by_pair.items():
        series.sort()
        inside = [p for t, p in series if t >= start]
        before = [p for t, p in series if t < start]
        prices = ([before[-1]] if before else []) + inside
        if not inside and not before:
            continue
        if not inside and series[-1][0] < start - timedelta(days=30):
            continue  # a price older than a month before the window is not "recent"
        mean = statistics.fmean(prices)
        cv = statistics.pstdev(prices) / mean if len(prices) > 1 else 0.0
        bucket = (catalog.get(itype) or {}).get("interruption")
        rate = INTERRUPTION_RATES.get(bucket or "", 0.0)
        latest = prices[-1]
        score = max(latest, mean) * (1 + cv) * (1 + rate)
        out.append(Candidate(itype, zone, round(latest, 6), round(mean, 6), round(cv, 4), bucket,
                             round(score, 6), len(prices)))
    return sorted(out, key=lambda c: (c.score, (catalog.get(c.instance_type) or {}).get("on_demand_usd", 0)))


def fits(spec: dict, req: Requirement) -> bool:
    return (spec["gpus"] >= req.gpus and spec["gpu_memory_gib"] >= req.gpu_memory_gib
            and spec["vcpus"] >= req.vcpus)


def choose_capacity(settings: Settings, requirement: Requirement | None = None, *,
                    on_demand: bool = False, now: datetime | None = None,
                    snapshot_path: Path = SNAPSHOT) -> Capacity:
    """The spot step: prices, the rule (see the module doc), the choice and why."""
    req = requirement or Requirement.from_settings(settings)
    snapshot = load_snapshot(snapshot_path)
    catalog = snapshot["instance_types"]
    types, zones = _csv(settings.cost_instance_types), _csv(settings.cost_zones)
    unknown = [t for t in types if t not in catalog]
    if unknown:
        raise PriceDataError(f"FLIGHTLINE_COST_INSTANCE_TYPES names {unknown}, which the catalog "
                             f"({snapshot_path.name}) does not describe; known: {sorted(catalog)}")
    fitting = [t for t in types if fits(catalog[t], req)]
    if not fitting:
        raise NoCapacityFits(f"none of {types} has {req.gpus} GPU(s) of {req.gpu_memory_gib} GiB "
                             f"and {req.vcpus} vCPUs")
    cheapest_od = min(fitting, key=lambda t: catalog[t]["on_demand_usd"])
    days = settings.cost_lookback_days
    if has_credentials(settings):
        end = now or datetime.now(UTC)
        start = end - timedelta(days=days)
        raw, pages = fetch_history(fitting, zones, start, end, settings)
        source = f"live {settings.aws_region}" + (f" at {settings.ec2_endpoint_url}"
                                                  if settings.ec2_endpoint_url else "")
        where = f"spot price history ({source}, {pages} page(s))"
    else:
        end = datetime.fromisoformat(snapshot["snapshot_date"]).replace(tzinfo=UTC)
        start = end - timedelta(days=days)
        raw = [p for p in snapshot["spot_price_history"]
               if p["InstanceType"] in fitting and p["AvailabilityZone"] in zones]
        source = f"snapshot {snapshot['snapshot_date']}"
        where = f"the price snapshot of {snapshot['snapshot_date']}"
        log.warning("no AWS credentials: spot prices from %s (%s)", where, snapshot_path.name)
    points = _parse_points(raw, where)
    candidates = judge(points, catalog, start, end)
    window = {"start": start.isoformat(), "end": end.isoformat()}
    if not candidates:
        newest = max((ts for *_, ts, _ in points), default=None)
        raise PriceDataError(
            f"{where}: no spot price for {fitting} in {zones} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC" + (f" (the newest price is from {newest:%Y-%m-%d})" if newest
                                           else " (no price at all)"))
    best = candidates[0]
    runners = [asdict(c) for c in candidates[1:4]]
    od = catalog[cheapest_od]["on_demand_usd"]

    def spec(t):
        return {k: catalog[t][k] for k in ("gpus", "gpu_memory_gib", "vcpus")}

    if on_demand or best.score >= od:
        why = ("on-demand asked for (spot interrupted this job too often)" if on_demand else
               f"the best spot ({best.instance_type} in {best.zone}, risk-adjusted "
               f"${best.score:.4f}/h) is not below on-demand ${od:.4f}/h")
        return Capacity(instance_type=cheapest_od, zone=None, capacity_type="on-demand",
                        hourly_usd=od, on_demand_usd=od, **spec(cheapest_od), source=source,
                        reason=f"{cheapest_od} on demand at ${od:.4f}/h: {why}", window=window,
                        runners_up=[asdict(best), *runners])
    saving = 1 - best.latest / catalog[best.instance_type]["on_demand_usd"]
    reason = (f"{best.instance_type} spot in {best.zone} at ${best.latest:.4f}/h (mean "
              f"${best.mean:.4f}, swings {best.cv:.0%}, interruptions {best.interruption or 'unknown'}; "
              f"risk-adjusted ${best.score:.4f}/h over {days} days of {source}), {saving:.0%} below "
              f"its on-demand ${catalog[best.instance_type]['on_demand_usd']:.4f}/h")
    if runners:
        r = runners[0]
        reason += f"; next: {r['instance_type']} in {r['zone']} (${r['score']:.4f}/h risk-adjusted)"
    return Capacity(instance_type=best.instance_type, zone=best.zone, capacity_type="spot",
                    hourly_usd=best.latest, on_demand_usd=catalog[best.instance_type]["on_demand_usd"],
                    **spec(best.instance_type), source=source, reason=reason, window=window,
                    runners_up=runners)


def export_snapshot(settings: Settings, out: Path, *, days: int = 7) -> dict:
    """Write a fresh snapshot from live prices (the catalog copied from the current one)."""
    snapshot = load_snapshot()
    types, zones = list(snapshot["instance_types"]), _csv(settings.cost_zones)
    end = datetime.now(UTC)
    raw, _ = fetch_history(types, zones, end - timedelta(days=days), end, settings)
    _parse_points(raw, "live spot price history")
    snapshot |= {"snapshot_date": end.date().isoformat(), "region": settings.aws_region,
                 "spot_price_history": [{k: (v.isoformat() if isinstance(v, datetime) else v)
                                         for k, v in p.items()} for p in raw]}
    snapshot["about"] = (f"Exported from describe_spot_price_history in {settings.aws_region} on "
                         f"{end.date()}; on-demand figures and the catalog as before.")
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(snapshot, indent=0))
    tmp.replace(out)
    return {"out": str(out), "prices": len(raw)}
