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
#: The model's features by family (what each says is in :mod:`tasks.features.transform`); a new
#: feature goes into one family, and the numeric list, the ablation and the suite's column order
#: follow from here.
FEATURE_FAMILIES: dict[str, list[str]] = {
    "calendar": ["month", "day_of_week", "is_weekend", "dep_hour", "dep_minute_of_day",
                 "sched_block_min"],
    "route": ["carrier", "origin", "dest", "distance"],
    "weather": ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
                "pressure", "visib"],
    "weather_trend": ["precip_3h", "precip_6h", "visib_min_3h", "wind_gust_max_3h",
                      "pressure_change_3h"],
    "plane": ["plane_type", "manufacturer", "engine", "plane_age", "seats", "engines"],
    "origin_congestion": ["origin_dep_delay_mean_3h", "origin_late_dep_share_3h",
                          "origin_departures_3h", "origin_sched_flights_1h"],
    "origin_trend": ["origin_dep_delay_mean_1h", "origin_last_dep_delay",
                     "carrier_origin_dep_delay_mean_3h"],
    "arrivals": ["carrier_late_arr_share_6h", "carrier_arrivals_6h", "dest_arr_delay_mean_6h"],
    "destination_trend": ["dest_arr_delay_mean_2h", "carrier_arr_delay_mean_3h"],
    "rotation": ["prev_leg_dep_delay", "prev_leg_arr_delay", "prev_leg_gap_min",
                 "plane_legs_today_before", "turn_buffer_min", "inbound_slack_min",
                 "inbound_delay_est"],
}
NUMERIC_FEATURES = [c for family in FEATURE_FAMILIES.values() for c in family
                    if c not in CATEGORICAL_FEATURES]
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
