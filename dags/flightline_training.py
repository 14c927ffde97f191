"""
### flightline_training: features window → XGBoost and Horovod PyTorch → champion/challenger

One task per step of the training flow (`tasks/flows/training.py`), each handed the result of
the step before.

Runs on a retrain request from the monitoring DAG (the `flightline_retrain_request` Asset: drift
or lost accuracy for several days running), weekly (Sunday 04:00 UTC, `FLIGHTLINE_TRAINING_SCHEDULE`;
`off`: retrain requests only), or from the UI with the
form below; the run note starts with which.

1. **prepare_split**: the trailing window of published feature partitions ending at the
   retrain request's day, the *Last day of the window* Param, or by default the newest
   published day up to the run's logical date (so the form's defaults train on the backfilled
   2013 demo days), split by date (never at random): train, then validation, then the most
   recent days as test. The exact partitions are recorded as lineage.
2. **choose_capacity**: spot prices (boto3, or the dated snapshot without AWS credentials),
   the cheapest capacity that fits a trainer, and why; then the run's cost estimate (price x
   each trainer's expected duration from the cost ledger) against the *cost budget* Param: a
   run over budget is refused here, before any capacity is requested, with the estimate.
3. **train_xgboost** and **train_torch_horovod** (in parallel, as the *model family* Param
   chooses): XGBoost hist (CUDA on a GPU), and a PyTorch tabular model trained data-parallel
   with Horovod across *Horovod workers* processes (Gloo on CPU), checkpointed every epoch to the
   model store so a retry after a spot interruption resumes. Each candidate is evaluated on the
   test days beside two baselines (historical late rate; logistic regression), with ROC and
   calibration plots and feature importance, and registered as a new model version.
4. **decide_promotion**: the best candidate becomes champion only if it beats both baselines
   and the current champion on the same test days by the margin, or when *force promote* is
   set. The task log says why either way.
5. **package_champion**: when the champion is not the released model (it just moved), a
   BentoML service of it is built and its archive kept beside the version in the model store;
   skipped otherwise.
6. **check_serving**: the Bento is started with `bentoml serve` on loopback and must answer
   the version's test days exactly as the offline model (within 1e-6), under the p99 latency
   bound, and refuse a malformed request with a 400; the released model is scored on the same
   test days for the reviewer. A failed check keeps the previous release and fails the task
   with the reason.
7. **approve_release**: with the *Release approval* Param `on` (default
   `FLIGHTLINE_RELEASE_APPROVAL`), the run waits in **Required actions** for a person to
   approve or reject, shown the candidate against the released model (ROC AUC, PR AUC,
   calibration, the baselines), the serving figures, the window, the run's cost and the
   evaluation plots; no answer in time rejects. `auto` approves and records it; `off` skips
   the wait.
8. **release**: the `released` alias moves when approved; a rejection keeps the current
   release. The decision (who, when, why) joins the release history
   (`flightline models releases`) and the run's note.

**Deadline**: a run still going `FLIGHTLINE_TRAINING_DEADLINE_MINUTES` (default 180) after it
was queued (a wait for approval included) is alerted where `FLIGHTLINE_NOTIFY` says.

Every task attempt is priced into the cost ledger (the trainers at the chosen capacity, the
rest as the local machine); each task's **Cost** button shows the run's ledger, and the run's
note gains its cost and the saving against on-demand when it ends.

With `FLIGHTLINE_K8S_STEPS` the trainers, packaging and the serving check run as pods of the
task image (`flightline step ...`), a trainer on a node of the instance type, zone and capacity
type the cost step chose; Horovod over several GPU nodes runs as an MPIJob.

`flightline models list` / `flightline models show VERSION` read the registry;
`make serve` serves the released Bento on localhost.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task
from flightline_airflow import DAG_TAGS_BASE, RETRAIN_ASSET, default_args, event_day
from flightline_airflow.approval import ReleaseApprovalOperator
from flightline_airflow.deadlines import deadline
from flightline_airflow.deployment import Deployment
from flightline_airflow.step_tasks import run_declared, step_task

from tasks.settings import Settings

SETTINGS = Settings.from_env()  # environment only: which steps run as Kubernetes pods
DEPLOYMENT = Deployment.from_env()  # the schedule, the release approval's default and time-out


def _end_day(context):
    """The last day of this run's window: the retrain request's day, else the *day* Param, else
    the newest published day up to the run's logical date (so a run triggered from the UI with
    its defaults trains on whatever history was backfilled, 2013's demo days included)."""
    from tasks.training.data import newest_published

    if context.get("triggering_asset_events") or (context.get("params") or {}).get("day"):
        return event_day(context)
    day = event_day(context)
    return newest_published(Settings.from_env(), day) or day


#: The form a person sees in the UI (Trigger), with each field's meaning.
PARAMS = {
    "day": Param(None, type=["null", "string"], format="date", title="Last day of the window",
                 description="YYYY-MM-DD. Empty: the retrain request's day, else the newest "
                             "published feature day up to the run's logical date."),
    "window_days": Param(90, type="integer", minimum=7, maximum=730, title="Training window (days)",
                         description="7 to 730. Trailing days of published features to use."),
    "model_family": Param("both", type="string", enum=["xgboost", "torch-horovod", "both"],
                          title="Model family",
                          description="Which trainers run; 'both' trains them in parallel."),
    "horovod_workers": Param(2, type="integer", minimum=1, maximum=16, title="Horovod workers",
                             description="1 to 16. Data-parallel worker processes for the PyTorch model."),
    "gpu": Param("auto", type="string", enum=["auto", "on", "off"], title="GPU",
                 description="auto: use a GPU when one is visible; on: require one; off: CPU."),
    "force_promote": Param(False, type="boolean", title="Force promote",
                           description="Promote the best candidate even if the promotion decision refuses it."),
    "budget_minutes": Param(60, type="integer", minimum=1, maximum=1440,
                            title="Time budget per trainer (minutes)",
                            description="1 to 1440. Training stops at this budget (XGBoost keeps its best "
                                        "iteration so far)."),
    "budget_usd": Param(25.0, type="number", minimum=0, maximum=100000,
                        title="Cost budget (US dollars)",
                        description="The run is refused before any capacity is requested when "
                                    "its estimate (the chosen capacity's price x each trainer's "
                                    "expected duration) exceeds this."),
    "release_approval": Param(DEPLOYMENT.release_approval, type="string", enum=["off", "auto", "on"],
                              title="Release approval",
                              description="on: a person approves or rejects the release in "
                                          "Required actions (no answer in time: rejected); auto: "
                                          "approved automatically and recorded; off: released "
                                          "once the serving check passes."),
    "margin": Param(0.002, type="number", minimum=0, maximum=0.1, title="Promotion margin",
                    description="0 to 0.1. ROC AUC the challenger must gain over the champion."),
}


@task
def prepare_split(**context) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from tasks.flows import training
    from tasks.training.data import NotEnoughHistory

    end, window = _end_day(context), int(context["params"]["window_days"])
    try:
        return training.prepare_split(end, window, Settings.from_env()).to_dict()
    except NotEnoughHistory as exc:  # e.g. the first nightly run: nothing to train on yet
        from flightline_airflow.run_notes import run_trigger, write_run_note

        reason = (f"Not trained: {exc} in the {window} days up to {end.isoformat()}; "
                  "backfill flightline_daily first.")
        write_run_note(context, f"{run_trigger(context)} {reason}")
        raise AirflowSkipException(reason) from exc


@task(retries=3)
def choose_capacity(split: dict, **context) -> dict:
    """Spot prices, the cheapest capacity that fits, and the budget check: all before any
    capacity is asked for. Throttling retries; bad price data and an over-budget estimate
    fail the run with the reason."""
    from airflow.sdk.exceptions import AirflowFailException
    from flightline_airflow.run_notes import run_trigger, write_run_note

    from tasks.cost.budget import OverBudget
    from tasks.cost.spot import NoCapacityFits, PriceDataError
    from tasks.flows import cost

    p, settings = context["params"], Settings.from_env()
    families = ["xgboost", "torch-horovod"] if p["model_family"] == "both" else [p["model_family"]]
    try:
        capacity, estimate = cost.choose_within_budget(
            families, float(p["budget_minutes"]), float(p["budget_usd"]), settings)
    except OverBudget as exc:
        write_run_note(context, f"{run_trigger(context)} Refused: {exc}")
        raise AirflowFailException(f"over budget: {exc}") from exc
    except (PriceDataError, NoCapacityFits) as exc:
        raise AirflowFailException(str(exc)) from exc
    print(f"capacity: {capacity.reason}")
    print(f"estimate ${estimate.usd:.4f} within the budget ${float(p['budget_usd']):.2f}: {estimate.parts}")
    return capacity.to_dict() | {"estimate": estimate.to_dict()}


def _trainer_setup(family: str, capacity: dict, context) -> dict:
    """What a trainer's attempt runs with, in the worker and for its pod alike: skipped
    unless its family is chosen; on demand after too many spot interruptions; priced in the
    ledger at its capacity; the run key its checkpoints resume under; the notice it watches
    on spot capacity."""
    from airflow.sdk.exceptions import AirflowSkipException
    from flightline_airflow.cost_ledger import use_capacity

    from tasks.cost.interruption import attempt_capacity

    p, settings, ti = context["params"], Settings.from_env(), context["ti"]
    if p["model_family"] not in (family, "both"):
        raise AirflowSkipException(f"model family is {p['model_family']}")
    cap = attempt_capacity({k: v for k, v in capacity.items() if k != "estimate"},
                           dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
                           settings=settings)
    if cap["capacity_type"] != capacity["capacity_type"]:
        print(f"attempt {ti.try_number}: {cap['reason']} at ${cap['hourly_usd']:.4f}/h")
    # This attempt is priced at its capacity (where the trainer's pod runs on a cluster).
    use_capacity(context, cap)
    options = {"run_key": f"{context['dag_run'].run_id}-{family}",  # stable across retries
               "workers": int(p["horovod_workers"]), "gpu": p["gpu"],
               "time_budget_minutes": float(p["budget_minutes"])}
    if cap["capacity_type"] == "spot":  # on-demand capacity is not reclaimed
        options["notice"] = {"attempt": ti.try_number,
                             "per_attempt": 20 if family == "xgboost" else 1}
    return {"options": options, "capacity": cap}


def _train(family: str, split: dict, capacity: dict, context) -> dict | None:
    from tasks.flows.steps import run_step

    setup = _trainer_setup(family, capacity, context)
    return run_step(f"training.train_{family.replace('-', '_')}", [split], Settings.from_env(),
                    setup["options"])


def _prepare(family: str):
    return lambda context, inputs, capacity: _trainer_setup(family, capacity, context)

# A spot interruption is retried at once (the checkpoint resumes it), more than once.
spot_retries = {"retries": 3, "retry_delay": timedelta(seconds=5), "retry_exponential_backoff": False}


@task(**spot_retries)
def train_xgboost(split: dict, capacity: dict, **context) -> dict | None:
    return _train("xgboost", split, capacity, context)


@task(**spot_retries)
def train_torch_horovod(split: dict, capacity: dict, **context) -> dict | None:
    return _train("torch-horovod", split, capacity, context)


@task(trigger_rule="none_failed_min_one_success")
def decide_promotion(xgb: dict | None, torch: dict | None, **context) -> dict:
    from flightline_airflow.run_notes import run_trigger, training_note, write_run_note

    from tasks.flows import training
    from tasks.training.registry import Candidate

    p = context["params"]
    decision = training.decide_promotion(
        [Candidate.from_dict(c) for c in (xgb, torch) if c], Settings.from_env(),
        margin=float(p["margin"]), force=bool(p["force_promote"])).to_dict()
    verdict = "PROMOTED" if decision["promote"] else "NOT promoted"
    print(f"{verdict} {decision['challenger']}: {decision['reason']}")
    write_run_note(context, f"{run_trigger(context)} {training_note(decision)}")
    return decision


@task
def package_champion(decision: dict, **context) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from tasks.flows import serving
    from tasks.training.promotion import Decision

    packaged = serving.package_champion(Decision.from_dict(decision), Settings.from_env())
    if packaged is None:
        raise AirflowSkipException("the champion is already the released model")
    print(f"packaged {packaged.version} as {packaged.bento}; archive {packaged.archive}")
    return packaged.to_dict()


@task
def check_serving(packaged: dict, **context) -> dict:
    from flightline_airflow.run_notes import release_note, write_run_note

    from tasks.serving.check import ServingCheckFailed

    try:
        checked = run_declared("serving.check_serving", [packaged])
    except ServingCheckFailed as exc:
        from airflow.sdk.exceptions import AirflowFailException

        write_run_note(context, release_note(None, str(exc)))
        if exc.transient:
            raise  # a busy machine, a server that did not start: the retry may pass
        raise AirflowFailException(str(exc)) from exc  # predictions differ: no retry
    f = checked["figures"]
    print(f"serving check passed for {checked['bento']}: {f}")
    write_run_note(context, f"Serving check passed: {checked['bento']} (parity "
                            f"{f.get('max_abs_diff_batch', 0):.1g} over {f.get('rows')} rows, "
                            f"p99 {f.get('p99_ms')} ms).")
    return checked


@task
def release(checked: dict, approval: dict, **context) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException
    from flightline_airflow.run_notes import release_note, write_run_note

    from tasks.serving.approval import Approval

    done = run_declared("serving.release", [checked, approval])
    if done is None:
        reason = (f"NOT released {checked['bento']}: "
                  f"{Approval.from_dict(approval).describe()}; the previous release stays.")
        write_run_note(context, reason)
        raise AirflowSkipException(reason)
    print(f"RELEASED {done['bento']}: {done['approval']}; {done['figures']}")
    write_run_note(context, release_note(done))
    return done


@dag(
    dag_id="flightline_training",
    schedule=DEPLOYMENT.training_timetable(RETRAIN_ASSET),
    deadline=deadline("the training run finished", DEPLOYMENT.training_deadline_minutes),
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=[*DAG_TAGS_BASE, "training"],
    doc_md=__doc__,
    params=PARAMS,
)
def flightline_training():
    split = prepare_split()
    capacity = choose_capacity(split)
    # Each heavy step in the worker, or as a pod (an MPIJob for Horovod over several nodes) on
    # the capacity the cost step chose, when FLIGHTLINE_K8S_STEPS names it.
    xgb = step_task("train_xgboost", lambda: train_xgboost(split, capacity), [split],
                    capacity=capacity, prepare=_prepare("xgboost"), gpu=True, settings=SETTINGS,
                    **spot_retries)
    torch = step_task("train_torch_horovod", lambda: train_torch_horovod(split, capacity), [split],
                      capacity=capacity, prepare=_prepare("torch-horovod"), gpu=True,
                      settings=SETTINGS, **spot_retries)
    decision = decide_promotion(xgb, torch)
    packaged = step_task("package_champion", lambda: package_champion(decision), [decision],
                         settings=SETTINGS)
    checked = step_task("check_serving", lambda: check_serving(packaged), [packaged],
                        settings=SETTINGS)
    approval = ReleaseApprovalOperator(task_id="approve_release", checked=checked,
                                       timeout_minutes=DEPLOYMENT.release_approval_timeout_minutes)
    release(checked, approval.output)


flightline_training()
