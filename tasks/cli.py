"""``flightline``: run any step from a shell or a Kubernetes pod, exactly as the DAGs run it.

Each subcommand takes dates/URIs/config as flags, calls a step or a flow of ``tasks.flows`` with
the settings read from the environment here (the CLI is an edge), prints the result as one JSON
object on stdout, and exits non-zero with the error on stderr when the step refuses its input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date

from tasks.settings import Settings, SettingsError, zones

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]] = {}


def command(name: str, help_text: str):
    """Register a subcommand: ``add_args(parser)`` declares flags, the function runs it."""

    def wrap(add_args):
        def register(run):
            COMMANDS[name] = (help_text, add_args, run)
            return run

        return register

    return wrap


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _jsonable(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    return str(obj)


# ------------------------------------------------------------------------------ subcommands
def _args_settings(p: argparse.ArgumentParser) -> None:
    pass


@command("settings", "print the effective settings (after FLIGHTLINE_* overrides)")(_args_settings)
def _run_settings(args: argparse.Namespace, settings: Settings):
    from tasks.flows.steps import flows

    flows()  # the zones declared steps write
    out = settings.model_dump()
    out["zones"] = {z: settings.zone(z) for z in zones()}  # with the zones steps declare
    return out


def _args_land(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", type=iso_date, required=True, help="logical date YYYY-MM-DD")
    p.add_argument("--overwrite", action="store_true", help="replace an existing drop")
    p.add_argument("--to", type=iso_date, default=None, help="land every day up to this one too")


@command("land", "serve the demo drop for one logical date into landing/")(_args_land)
def _run_land(args: argparse.Namespace, settings: Settings):
    from tasks.landing import land_day

    if args.to is None:
        return land_day(args.date, settings, overwrite=args.overwrite)
    if args.to < args.date:
        raise ValueError(f"--to {args.to} is before --date {args.date}")
    days = [args.date.fromordinal(o) for o in range(args.date.toordinal(), args.to.toordinal() + 1)]
    drops = [land_day(d, settings, overwrite=args.overwrite) for d in days]
    return {"landed": len(drops), "flights": sum(d.flights for d in drops)}


def _args_date(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", type=iso_date, required=True, help="logical date YYYY-MM-DD")


@command("find-drop", "report the complete drop for a date, or exit 3 if it is missing")(
    _args_date
)
def _run_find_drop(args: argparse.Namespace, settings: Settings):
    from tasks.landing import find_drop

    return find_drop(args.date, settings)


@command("outputs", "list where each output for a date is, zone by zone")(_args_date)
def _run_outputs(args: argparse.Namespace, settings: Settings):
    from tasks.outputs import outputs_for

    return outputs_for(args.date, settings)


def _args_bootstrap(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=["raw_flights", "raw_weather"])
    p.add_argument("--from", dest="first", type=iso_date, required=True)
    p.add_argument("--to", dest="last", type=iso_date, required=True)
    p.add_argument("--out", default=None, help="default: expectations/<dataset>.candidate.json")


@command("bootstrap-suite", "profile known-good days into a candidate expectation suite")(
    _args_bootstrap
)
def _run_bootstrap(args: argparse.Namespace, settings: Settings):
    from pathlib import Path

    from tasks.profiling import bootstrap_suite

    return bootstrap_suite(args.dataset, args.first, args.last, Path(args.out) if args.out else None)


@command("gate-raw", "validate the day's drop; quarantine it and exit 2 if it fails")(
    _args_date
)
def _run_gate_raw(args: argparse.Namespace, settings: Settings):
    from tasks.flows import daily

    return daily.raw_gate(daily.find_drop(args.date, settings), settings)


@command("features", "land, gate, build and publish the day's features (the daily flow)")(
    _args_date
)
def _run_features(args: argparse.Namespace, settings: Settings):
    from tasks.flows.daily import run_day

    return run_day(args.date, settings)


def _args_range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="first", type=iso_date, required=True)
    p.add_argument("--to", dest="last", type=iso_date, required=True)


@command("features-range", "build, gate and publish many days in one Spark job (history)")(
    _args_range
)
def _run_features_range(args: argparse.Namespace, settings: Settings):
    from tasks.flows.range_build import run_range

    return run_range(args.first, args.last, settings)


@command("check-suites", "validate landed days against the current raw suites, without "
                         "quarantine or Data Docs; exit 2 naming the days a suite change rejects")(
    _args_range
)
def _run_check_suites(args: argparse.Namespace, settings: Settings):
    from tasks.landing import find_drops
    from tasks.quality.gate import check_history
    from tasks.quality.raw import raw_batch

    drops = find_drops(args.first, args.last, settings)
    failed = {day: [f"{f['suite']}.{f['column'] or ''} {f['type']}" for f in fs]
              for day, fs in check_history(raw_batch(d, settings) for day, d in sorted(drops.items())
                                           if day >= args.first).items() if fs}
    if failed:
        raise ValueError(f"{len(failed)} day(s) fail the current suites: "
                         + json.dumps(failed, indent=1))
    return {"days": (args.last - args.first).days + 1, "failed": {}}


def _args_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--end", type=iso_date, required=True, help="last day of the window")
    p.add_argument("--window-days", type=int, default=90)
    p.add_argument("--family", choices=["xgboost", "torch-horovod", "both"], default="xgboost")
    p.add_argument("--workers", type=int, default=2, help="Horovod worker processes")
    p.add_argument("--gpu", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--force-promote", action="store_true")
    p.add_argument("--margin", type=float, default=0.002, help="ROC AUC the challenger must gain")
    p.add_argument("--epochs", type=int, default=None, help="Horovod epochs")


@command("train", "train on a window of features, register, and decide the promotion")(_args_train)
def _run_train(args: argparse.Namespace, settings: Settings):
    from tasks.flows.training import run_training

    families = ["xgboost", "torch-horovod"] if args.family == "both" else [args.family]
    return run_training(
        args.end, args.window_days, settings, families=families,
        run_key=f"cli-{time.strftime('%Y%m%dT%H%M%S')}", workers=args.workers, gpu=args.gpu,
        margin=args.margin, force=args.force_promote,
        params={"torch-horovod": {"epochs": args.epochs}} if args.epochs else None)


def _args_models(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "show", "champion", "released", "releases"])
    p.add_argument("version", nargs="?", help="for show")


@command("models", "the model registry: versions, one version, the champion, the released "
                   "Bento, the release history")(_args_models)
def _run_models(args: argparse.Namespace, settings: Settings):
    from tasks.training import registry

    if args.action == "list":
        return registry.versions(settings)
    if args.action == "champion":
        return registry.champion(settings)
    if args.action == "released":
        return registry.released(settings)
    if args.action == "releases":
        return registry.release_history(settings)
    if not args.version:
        raise ValueError("models show needs a VERSION (see: flightline models list)")
    return registry.show(args.version, settings)


def _args_release(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", default=None,
                   help="registry version to package (default: the champion, if not released)")


@command("release", "package a model version as a Bento, check it on a live server, release it")(
    _args_release
)
def _run_release(args: argparse.Namespace, settings: Settings):
    from tasks.flows.serving import run_release

    return run_release(settings, version=args.version)


def _args_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None, help="default: the serve_port setting")


@command("serve", "serve the released Bento on 127.0.0.1 (foreground; Ctrl-C stops it)")(_args_serve)
def _run_serve(args: argparse.Namespace, settings: Settings):
    import os

    from tasks.serving.package import Packaged, bentoml_env, ensure_local
    from tasks.training import registry

    rel = registry.released(settings)
    if rel is None:
        raise LookupError("no released model yet: run the training DAG, or `flightline release`")
    ensure_local(Packaged(rel["version"], rel["bento"], rel["archive"], rel.get("labels", {})),
                 settings)
    port = str(args.port or settings.serve_port)
    print(f"serving {rel['bento']} ({rel['version']}) on http://127.0.0.1:{port}", file=sys.stderr)
    exe = os.path.join(os.path.dirname(sys.executable), "bentoml")
    os.execve(exe, [exe, "serve", rel["bento"], "--host", "127.0.0.1", "--port", port],
              bentoml_env(settings))


def _args_monitor(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["day", "metrics", "trend"], help="day: monitor one day; "
                   "metrics: the metrics table; trend: draw it as a PNG")
    p.add_argument("--date", type=iso_date, default=None, help="for day: YYYY-MM-DD")
    p.add_argument("--from", dest="first", type=iso_date, default=None, help="for trend")
    p.add_argument("--to", dest="last", type=iso_date, default=None, help="for trend")
    p.add_argument("--out", default=None, help="for trend: PNG path (default: in reports/)")


@command("monitor", "monitoring: score a day, its drift and quality reports, the retrain "
                    "decision; or the metrics table")(_args_monitor)
def _run_monitor(args: argparse.Namespace, settings: Settings):
    if args.action == "metrics":
        from tasks.monitoring.metrics import read_metrics

        return read_metrics(settings).to_dict("records")
    if args.action == "trend":
        from pathlib import Path

        from tasks.monitoring.trend import draw_trend

        if args.first is None or args.last is None:
            raise ValueError("monitor trend needs --from and --to (YYYY-MM-DD)")
        return draw_trend(args.first, args.last, settings, Path(args.out) if args.out else None)
    if args.date is None:
        raise ValueError("monitor day needs --date YYYY-MM-DD")
    from tasks.flows.monitoring import run_monitoring

    return run_monitoring(args.date, settings)


def _args_monitoring_ui(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8000, help="default: 8000")


@command("monitoring-ui", "Evidently's UI over the data root's Evidently workspace (the monitored "
                          "days' drift and quality, with their dashboard) on 127.0.0.1 "
                          "(foreground; Ctrl-C stops it)")(_args_monitoring_ui)
def _run_monitoring_ui(args: argparse.Namespace, settings: Settings):
    import os

    from tasks.monitoring.workspace import workspace_dir

    folder = workspace_dir(settings)
    if folder is None:
        raise ValueError(f"the Evidently workspace is local only: the data root "
                         f"{settings.data_root} is on S3")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port} is not a TCP port")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"Evidently UI over {folder} on http://127.0.0.1:{args.port}", file=sys.stderr)
    exe = os.path.join(os.path.dirname(sys.executable), "evidently")
    os.execv(exe, [exe, "ui", "--workspace", str(folder), "--host", "127.0.0.1",
                   "--port", str(args.port)])


def _args_cost(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["spot", "report", "run", "snapshot"],
                   help="spot: choose capacity for training from spot prices; report: totals per "
                        "DAG and step and a PNG of daily cost; run: one DAG run's ledger; "
                        "snapshot: export live prices to a snapshot file")
    p.add_argument("--from", dest="first", type=iso_date, default=None, help="for report")
    p.add_argument("--to", dest="last", type=iso_date, default=None, help="for report")
    p.add_argument("--out", default=None, help="for report and snapshot: the file to write")
    p.add_argument("--dag", default=None, help="for run: the DAG id")
    p.add_argument("--run-id", default=None, help="for run: the run id")
    p.add_argument("--on-demand", action="store_true", help="for spot: ask for on-demand capacity")


@command("cost", "cost: spot prices and the capacity choice, the cost ledger and its reports")(
    _args_cost)
def _run_cost(args: argparse.Namespace, settings: Settings):
    from pathlib import Path

    if args.action == "spot":
        from tasks.cost.spot import choose_capacity

        return choose_capacity(settings, on_demand=args.on_demand)
    if args.action == "snapshot":
        from tasks.cost.spot import export_snapshot

        if not args.out:
            raise ValueError("cost snapshot needs --out FILE")
        return export_snapshot(settings, Path(args.out))
    if args.action == "run":
        from tasks.cost.ledger import run_summary

        if not (args.dag and args.run_id):
            raise ValueError("cost run needs --dag and --run-id")
        return run_summary(args.dag, args.run_id, settings)
    from tasks.cost.report import cost_report

    if args.first is None or args.last is None:
        raise ValueError("cost report needs --from and --to (YYYY-MM-DD)")
    return cost_report(args.first, args.last, settings, Path(args.out) if args.out else None)


def _args_step(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the step, as flow.step (as its flow declares it): "
                                "daily.build_features, training.train_xgboost, ...")
    p.add_argument("--input", action="append", default=[], metavar="JSON",
                   help="the result of a step before, as JSON (repeat per input; @FILE reads a file)")
    p.add_argument("--options", default="{}", metavar="JSON",
                   help="the step's keyword options as a JSON object (@FILE reads a file)")
    p.add_argument("--result-file", default=None, metavar="PATH",
                   help="also write the result here (a pod's XCom: /airflow/xcom/return.json)")


def _json_arg(text: str, what: str):
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None


@command("step", "run one declared step on the results of the steps before (what a DAG task "
                 "and a Kubernetes pod run)")(_args_step)
def _run_step(args: argparse.Namespace, settings: Settings):
    import os

    from tasks.flows.steps import run_step

    inputs = [_json_arg(t, f"--input {i + 1}") for i, t in enumerate(args.input)]
    options = _json_arg(args.options, "--options")
    if not isinstance(options, dict):
        raise ValueError("--options must be a JSON object")
    result = run_step(args.name, inputs, settings, options)
    if args.result_file and args.result_file.startswith("s3://"):
        from tasks.storage import Store

        Store(settings).write_text(args.result_file, json.dumps(result, default=_jsonable))
    elif args.result_file:  # atomically: the XCom sidecar must never read half a file
        folder = os.path.dirname(os.path.abspath(args.result_file))
        os.makedirs(folder, exist_ok=True)
        tmp = f"{args.result_file}.tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, default=_jsonable)
        os.replace(tmp, args.result_file)
    return result


# ------------------------------------------------------------------------------ entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flightline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _run) in sorted(COMMANDS.items()):
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        result = COMMANDS[args.command][2](args, settings)
    except SettingsError as exc:
        print(f"flightline: bad setting: {exc}", file=sys.stderr)
        return 2
    except LookupError as exc:  # DropMissing and friends: a named, expected condition
        print(f"flightline {args.command}: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:  # bad input, named by the step
        print(f"flightline {args.command}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from tasks.cost.interruption import INTERRUPTED_EXIT, SpotInterrupted

        if not isinstance(exc, SpotInterrupted):
            raise
        print(f"flightline {args.command}: spot interruption: {exc}", file=sys.stderr)
        return INTERRUPTED_EXIT  # a pod's exit code: the operator retries it as interrupted
    print(json.dumps(result, default=_jsonable, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
