"""Expectation suites: versioned JSON files in ``expectations/`` (one per dataset), or built in code.

Suite kwargs may hold ``{"$PARAMETER": "name"}`` placeholders filled at run time (the day's
year/month/day, the expected date), so "the drop's dates match the logical date" is a plain
expectation.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.settings import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


class SuiteError(ValueError):
    """An expectation suite file is unreadable or names an unknown expectation."""


def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


def load_suite_json(name: str) -> dict:
    path = suite_path(name)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"no expectation suite {name!r}: {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON ({exc})") from None
    if raw.get("name") != name:
        raise SuiteError(f"{path}: suite name {raw.get('name')!r} does not match file name")
    return raw


def build_suite(raw: dict, path_hint: str):
    """Strict loader: GE silently drops unknown expectation types; we refuse them instead."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    exps = []
    for i, e in enumerate(raw.get("expectations", [])):
        try:
            cfg = ExpectationConfiguration(**{k: v for k, v in e.items() if k != "id"})
            exps.append(cfg.to_domain_obj())
        except Exception as exc:
            raise SuiteError(f"{path_hint}: expectation #{i} ({e.get('type')}): {exc}") from None
    return gx.ExpectationSuite(name=raw["name"], expectations=exps, meta=raw.get("meta") or {})
