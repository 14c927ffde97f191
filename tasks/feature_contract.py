"""The feature contract: the columns of a published features partition, its key and its label.

One small module with no Spark (or pandas) import: the Spark transform writes these columns,
the features gate checks them (``expectations/features.json``), and training, serving and
monitoring read them.
"""

from __future__ import annotations

#: What identifies a flight's row.
KEY_COLUMNS = ["flight_date", "carrier", "flight", "origin", "sched_dep_utc"]
#: The order of rows inside a published partition.
ROW_ORDER = ["sched_dep_utc", "carrier", "flight", "origin"]
CATEGORICAL_FEATURES = ["carrier", "origin", "dest", "plane_type", "manufacturer", "engine"]
NUMERIC_FEATURES = [
    "month", "day_of_week", "is_weekend", "dep_hour", "dep_minute_of_day", "sched_block_min",
    "distance", "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
    "pressure", "visib", "plane_age", "seats", "engines",
    "origin_dep_delay_mean_3h", "origin_late_dep_share_3h", "origin_departures_3h",
    "origin_sched_flights_1h", "carrier_late_arr_share_6h", "carrier_arrivals_6h",
    "dest_arr_delay_mean_6h", "prev_leg_dep_delay", "prev_leg_arr_delay", "prev_leg_gap_min",
    "plane_legs_today_before",
]
#: Categorical features with a closed domain (any other value is an error); the others (dest,
#: plane attributes) are open: a value unseen in training is treated like a missing one.
CATEGORY_DOMAINS: dict[str, list[str]] = {
    "carrier": ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX",
                "WN", "YV"],
    "origin": ["EWR", "JFK", "LGA"],
}
#: What a model learns: the model's inputs, numeric then categorical.
MODEL_FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
#: Model features left out of monitoring's drift share: they differ between one day and a
#: reference drawn from weeks by construction, whatever the world does. ``month``: a day holds
#: one month, the reference two or three; ``day_of_week``: one weekday of seven; ``is_weekend``:
#: a day is all 0 or all 1. A new calendar feature (day of year, holiday flag) belongs here too.
#: Schedule columns (``dep_hour``, ...) stay in: a day's mix of hours is like the reference's,
#: and their calibrated thresholds absorb the weekday-to-weekend difference.
DRIFT_EXCLUDED = ["month", "day_of_week", "is_weekend"]
#: The label: arrival 15 or more minutes late (1) or not (0).
LABEL = "label_late15"
#: Every column of a published partition, in order.
FEATURE_COLUMNS = KEY_COLUMNS + ["dest", "tailnum"] + [
    c for c in CATEGORICAL_FEATURES + NUMERIC_FEATURES if c not in ("carrier", "origin", "dest")
] + [LABEL]
#: Model features that are never null in a published partition (the features suite expects it);
#: every other model feature may be null (missing weather, an unknown plane, a first leg).
NOT_NULL_FEATURES = [
    "carrier", "origin", "dest", "month", "day_of_week", "is_weekend", "dep_hour",
    "dep_minute_of_day", "sched_block_min", "distance", "origin_departures_3h",
    "origin_sched_flights_1h", "carrier_arrivals_6h", "plane_legs_today_before",
]
#: Columns of a partition that identify a flight but are not model inputs; a serving request
#: may carry them (optional) so its prediction log can be joined to the labels later.
REQUEST_KEY_COLUMNS = ["flight_date", "flight", "tailnum", "sched_dep_utc"]
