"""Flightline step logic: pure, typed Python with no Airflow import.

Each step takes URIs, dates and settings and returns URIs plus small metadata, so it runs the
same in-process (tests), from the ``flightline`` CLI, in an Airflow task and in a Kubernetes pod.
"""
