"""Monitoring: what the released model sees and how it does, and when to retrain.

- :mod:`~tasks.monitoring.scoring`: the released model (else the champion) scores a published day
  into ``predictions/scored/``;
- :mod:`~tasks.monitoring.reports`: Evidently 0.7 reports against the version's reference sample
  (data and prediction drift; classification quality on the labelled day);
- :mod:`~tasks.monitoring.calibration`: each version's drift threshold per column, calibrated on
  its training days at training time, and the drift statistic itself;
- :mod:`~tasks.monitoring.metrics`: one row per day and model version, accumulated;
- :mod:`~tasks.monitoring.policy`: the retrain decision (K breaching days, then a cool-down).

The flow that names these steps is :mod:`tasks.flows.monitoring`.
"""
