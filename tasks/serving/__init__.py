"""Serving: the champion packaged as a Bento, checked on a live server, then released.

- :mod:`~tasks.serving.schema`: the request schema, generated from the feature contract;
- :mod:`~tasks.serving.predictor`: a registry version's model behind that schema (no BentoML);
- :mod:`~tasks.serving.service`: the BentoML service (endpoints, adaptive batching);
- :mod:`~tasks.serving.prediction_log`: what the server predicted, in daily Parquet partitions;
- :mod:`~tasks.serving.package`: ``bentoml build`` of a registry version, exported as an archive;
- :mod:`~tasks.serving.check`: the serving check on loopback, and the ``released`` alias.

The flow that names these steps is :mod:`tasks.flows.serving`.
"""
