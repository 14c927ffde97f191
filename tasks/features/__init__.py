"""Features: the Spark transform (one function per feature family), the builds, the staged write.

The feature contract (columns, key, label) is :mod:`tasks.feature_contract`, importable without
Spark; the daily and range flows (:mod:`tasks.flows`) name the steps that use these modules.
"""
