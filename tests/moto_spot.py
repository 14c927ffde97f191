"""moto in server mode as the EC2 endpoint, with spot price histories the tests load into it.

moto answers ``DescribeSpotPriceHistory`` with one placeholder price per offering (0.00001,
dated 2006) and no pagination. This launcher runs the real moto server on loopback with that
one operation answered from a JSON file of price points (``--prices``), honouring what AWS
honours: instance types, the availability-zone filter, product descriptions, ``StartTime`` /
``EndTime`` (a price in force at the start is included, as AWS does) and ``MaxResults`` with
``NextToken``. Every other EC2 and S3 operation is moto's own. ``--throttle N`` answers the
first N calls with ``RequestLimitExceeded``.

    python tests/moto_spot.py --port 5123 --prices prices.json
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _aware(value) -> datetime | None:
    if value is None or value == "":
        return None
    ts = _ts(value) if isinstance(value, str) else value
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def install(prices_file: Path, throttle: int = 0) -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.spot_instances import SpotInstances

    lock = threading.RLock()
    state = {"throttle": throttle, "calls": 0}
    cache: dict = {}  # the file's points, and each query's answer, until the file changes

    def points_for(key: tuple, select) -> list[dict]:
        with lock:  # the server is threaded; clients read pages concurrently
            return _points_for(key, select)

    def _points_for(key: tuple, select) -> list[dict]:
        st = prices_file.stat() if prices_file.exists() else None
        mtime = (st.st_mtime_ns, st.st_size) if st else 0
        if cache.get("mtime") != mtime:
            cache.clear()
            cache["mtime"] = mtime
            cache["points"] = json.loads(prices_file.read_text()) if mtime else []
        if key not in cache:
            cache[key] = select(cache["points"])
        return cache[key]

    def describe_spot_price_history(self) -> ActionResult:
        with lock:
            state["calls"] += 1
            if state["throttle"] > 0:
                state["throttle"] -= 1
                raise EC2ClientError("RequestLimitExceeded", "Request limit exceeded.")
        types = set(self._get_param("InstanceTypes", []) or [])
        products = set(self._get_param("ProductDescriptions", []) or [])
        filters = self._filters_from_querystring()
        zones = set(filters.get("availability-zone", []))
        start, end = (_aware(v) for v in (self._get_param("StartTime"), self._get_param("EndTime")))

        def select(points):
            sel = [p for p in points
                   if (not types or p["InstanceType"] in types)
                   and (not zones or p["AvailabilityZone"] in zones)
                   and (not products or p.get("ProductDescription", "Linux/UNIX") in products)]
            sel.sort(key=lambda p: (p["InstanceType"], p["AvailabilityZone"], p["Timestamp"]))
            keep = []
            for i, p in enumerate(sel):
                ts = _ts(p["Timestamp"])
                if end is not None and ts > end:
                    continue
                nxt = sel[i + 1] if i + 1 < len(sel) else None
                same = nxt is not None and (nxt["InstanceType"], nxt["AvailabilityZone"]) == (
                    p["InstanceType"], p["AvailabilityZone"])
                in_force_at_start = start is not None and ts < start and (
                    not same or _ts(nxt["Timestamp"]) > start)
                if start is None or ts >= start or in_force_at_start:
                    keep.append(p)
            return keep

        keep = points_for((tuple(sorted(types)), tuple(sorted(zones)), tuple(sorted(products)),
                           start, end), select)
        size = int(self._get_param("MaxResults") or 1000)
        offset = int(self._get_param("NextToken") or 0)
        page = keep[offset:offset + size]
        result = {"SpotPriceHistory": [
            {"InstanceType": p["InstanceType"], "AvailabilityZone": p["AvailabilityZone"],
             "ProductDescription": p.get("ProductDescription", "Linux/UNIX"),
             "SpotPrice": p["SpotPrice"], "Timestamp": p["Timestamp"]} for p in page]}
        if offset + size < len(keep):
            result["NextToken"] = str(offset + size)
        return ActionResult(result)

    SpotInstances.describe_spot_price_history = describe_spot_price_history
    SpotInstances.spot_price_calls = state  # for the tests' own inspection via the module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--prices", type=Path, required=True)
    ap.add_argument("--throttle", type=int, default=0)
    args = ap.parse_args()
    install(args.prices, args.throttle)
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(f"moto with spot prices on 127.0.0.1:{args.port} at {datetime.now(UTC):%H:%M:%S}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
