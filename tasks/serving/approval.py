"""Release approval: whether a checked Bento may become the ``released`` model, and what the
person deciding it is shown.

The mode is the training DAG's *Release approval* Param (its default:
``FLIGHTLINE_RELEASE_APPROVAL``):

- ``off``: no one is asked; a Bento that passed its serving check is released (``make demo``);
- ``auto``: approved automatically, recorded as such (``dags test``, CI, a staging deployment);
- ``on``: the run waits in Airflow's *Required actions* for a person to approve or reject the
  release, with :func:`review` as the form's text; no answer within the response timeout
  rejects it. The wait is Airflow's own (a human-in-the-loop task); the answer comes back here
  as :meth:`Approval.from_response`.

Whatever the answer, the decision (who, when, why) joins the release history
(:func:`release`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tasks.results import Result
from tasks.serving.check import Checked, Release
from tasks.settings import Settings
from tasks.training import registry

MODES = ("off", "auto", "on")
APPROVE, REJECT = "Approve", "Reject"


@dataclass
class Approval(Result):
    """A release decision: ``approved`` or ``rejected``; by whom (None: nobody, as the mode
    says), when, and why."""

    decision: Literal["approved", "rejected"]
    mode: str
    at: str
    by: str | None = None
    comment: str = ""
    timed_out: bool = False

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    def describe(self) -> str:
        """One line for the run note and the task log."""
        if self.mode == "off":
            return "approval off: released after its serving check"
        if self.mode == "auto":
            return f"approved automatically (approval mode auto) at {self.at}"
        if self.timed_out:
            return f"no answer by {self.at}: the release timed out and counts as rejected"
        why = f": {self.comment}" if self.comment else ""
        return f"{self.decision} by {self.by or 'unknown'} at {self.at}{why}"

    @classmethod
    def from_response(cls, response: dict, *, timed_out: bool = False) -> Approval:
        """A human-in-the-loop answer (``chosen_options``, ``params_input``, ``responded_at``,
        ``responded_by_user``) as a decision; a time-out is a rejection."""
        chosen = list(response.get("chosen_options") or [])
        if chosen not in ([APPROVE], [REJECT]):
            raise ValueError(f"release approval: expected one of {APPROVE!r} or {REJECT!r}, "
                             f"got {chosen!r}")
        user = response.get("responded_by_user")
        by = (user.get("name") or user.get("id")) if isinstance(user, dict) else user
        at = response.get("responded_at") or datetime.now(UTC)
        at = at.isoformat() if isinstance(at, datetime) else str(at)
        comment = str((response.get("params_input") or {}).get("comment") or "").strip()
        return cls(decision="approved" if chosen == [APPROVE] and not timed_out else "rejected",
                   mode="on", at=at, by=None if timed_out else by, comment=comment,
                   timed_out=timed_out)


def approve_release(checked: Checked, settings: Settings, *, mode: str = "off") -> Approval:
    """The decision without a person: ``off`` and ``auto`` approve at once (and say which).
    ``on`` needs Airflow's UI (the training DAG's human-in-the-loop task); in one process it is
    refused rather than silently approved."""
    if mode not in MODES:
        raise ValueError(f"release approval mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "on":
        raise ValueError("release approval 'on' waits for a person in the Airflow UI; a run in "
                         "one process (the CLI, make demo) takes 'off' or 'auto'")
    print(f"release of {checked.bento}: approval {mode}, approved without a person")
    return Approval(decision="approved", mode=mode, at=datetime.now(UTC).isoformat())


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def review(checked: Checked, *, cost: str | None = None, plots_url: str | None = None,
           timeout: str | None = None) -> str:
    """What the reviewer reads (Markdown): the candidate against the released model on the same
    test days, the baselines, the serving check's figures, the training window, the run's cost,
    and links to the evaluation plots."""
    c = checked.comparison
    cand, rel = c.get("candidate") or {}, c.get("released")
    rows = [("ROC AUC", "roc_auc"), ("PR AUC", "pr_auc"), ("log loss", "log_loss"),
            ("Brier", "brier"), ("ECE (calibration)", "ece")]
    rel_name = c.get("released_version") or "none released yet"
    table = [f"| on the {len(c.get('test_days', []))} test days | candidate `{checked.version}` "
             f"| released `{rel_name}` |", "|---|---|---|"]
    for label, key in rows:
        table.append(f"| {label} | {_fmt(cand.get(key))} | {_fmt((rel or {}).get(key))} |")
    for name, auc in sorted((c.get("baselines") or {}).items()):
        table.append(f"| baseline: {name} (ROC AUC) | {_fmt(auc)} | |")
    f = checked.figures
    train, test = c.get("train_days") or [], c.get("test_days") or []
    lines = [
        f"**Release `{checked.bento}`** (registry version `{checked.version}`)?",
        "",
        *table,
        "",
        f"- Rows scored: {cand.get('rows', 'n/a')}; late share {_fmt(cand.get('positive_rate'), 3)}",
    ]
    if c.get("released_error"):
        lines.append(f"- The released model could not be scored: {c['released_error']}")
    if train:
        lines.append(f"- Training window: {train[0]} to {train[-1]} ({len(train)} days); "
                     f"test days {test[0]} to {test[-1]}" if test else "")
    lines += [
        f"- Serving check passed: parity {f.get('max_abs_diff_batch', 0):.1g} (batch) and "
        f"{f.get('max_abs_diff_single', 0):.1g} (single) over {f.get('rows')} rows; p99 "
        f"{f.get('p99_ms')} ms (bound {f.get('p99_bound_ms')} ms); a malformed request got "
        f"{f.get('bad_request_status')}",
    ]
    if cost:
        lines.append(f"- Cost of this run so far: {cost}")
    if plots_url and c.get("plots"):
        links = ", ".join(f"[{name}]({plots_url}/{file})" for name, file in sorted(c["plots"].items()))
        lines.append(f"- Evaluation plots: {links}")
    lines += ["", "**Approve** moves `released` to this Bento; **Reject** keeps the current "
              "release. Say why in the comment: it is kept in the release history."]
    if timeout:
        lines.append(f"No answer by {timeout} counts as Reject.")
    return "\n".join(line for line in lines if line is not None)


def release(checked: Checked, approval: Approval, settings: Settings) -> Release | None:
    """Move the ``released`` alias to a checked Bento when the release is approved (or approval
    is off); the decision (who, when, why) is kept in the release history either way. None when
    it is rejected or timed out: the previous release stays."""
    decision = {"kind": "decision", "bento": checked.bento, "version": checked.version,
                "check": checked.record, **approval.to_dict()}
    uri = registry.record_release_check(decision, settings)
    if not approval.approved:
        print(f"NOT released {checked.bento}: {approval.describe()}; the previous release "
              f"({(registry.released(settings) or {}).get('bento') or 'none'}) stays")
        return None
    record = {"bento": checked.bento, "version": checked.version, "archive": checked.archive,
              "labels": checked.labels, "passed": True, "reason": "passed",
              "figures": checked.figures, "check": checked.record, "approval": approval.to_dict()}
    alias = registry.set_released(record, settings)
    return Release(bento=checked.bento, version=checked.version, passed=True, reason="passed",
                   figures=checked.figures, record=uri, alias=alias, approval=approval.describe())
