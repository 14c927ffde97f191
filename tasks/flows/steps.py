"""The step declaration: one line per step, in its flow module, that everything else reads.

A flow module (``tasks/flows/<flow>.py``) ends with its :class:`Flow`: its steps in order, each
declared once with :func:`step`::

    FLOW = Flow("daily", dag="flightline_daily", steps=[
        step(land_demo_drop, "the demo source lands the day's drop", writes=("landing",)),
        step(build_features, "Spark: the typed raw partition and staged features",
             pod=Pod(cpu="1", memory="3Gi", spark=True), writes=("raw", "features")),
        ...
    ])

From the function's annotations the declaration knows what the step takes (its positional
parameters before ``settings``: the results of the steps before, or the run's arguments such
as ``day``) and what it returns (a :class:`tasks.results.Result` dataclass, or None when it has
nothing to do); its keyword-only parameters are its options. ``pod`` says what it needs to run as
a Kubernetes pod (none: it runs in the Airflow worker only); ``writes`` the data zones it writes,
which :meth:`tasks.settings.Settings.zone` then knows.

What reads it: :func:`run_step` (``flightline step``, the DAG tasks and the pods run a step by
name on its inputs' JSON), :meth:`Flow.run` (the flow in one process: ``run_day`` and friends),
the flow module's docstring table (:meth:`Flow.table`), the pod and MPIJob builders
(:mod:`flightline_airflow.kubernetes`), and the tests and benchmarks that list task ids. Flows
are found by module (:func:`flows`): a new flow module needs no registration either.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache, cached_property
from typing import Any

from tasks.results import decode, encode
from tasks.settings import Settings, declare_zone


@dataclass(frozen=True)
class Pod:
    """What a step asks for as a Kubernetes pod: requests (memory is also the limit; no CPU
    limit), a GPU node when a GPU is asked for, or a Spark driver (executors are pods)."""

    cpu: str
    memory: str
    gpu: bool = False
    spark: bool = False


@dataclass(frozen=True)
class Step:
    """One declared step (see the module's docstring); built with :func:`step`."""

    fn: Callable
    does: str
    name: str
    pod: Pod | None = None
    writes: tuple[str, ...] = ()
    flow: str = ""  # the flow that declares it (a step a flow borrows keeps its own)

    @property
    def qualname(self) -> str:
        """``flow.step``: the name ``flightline step`` and the pods run it by."""
        return f"{self.flow}.{self.name}"

    @cached_property
    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.fn)
        except NameError as exc:
            raise TypeError(f"step {self.name}: an annotation of {self.fn.__qualname__} cannot be "
                            f"resolved ({exc}); import its type at module level") from None

    @cached_property
    def inputs(self) -> tuple[tuple[str, Any], ...]:
        """(parameter, type) of what the step takes: its positional parameters before
        ``settings`` (the results of the steps before, or the run's arguments)."""
        out = []
        for p in inspect.signature(self.fn).parameters.values():
            if p.name == "settings" or p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                break
            if p.name not in self._hints:
                raise TypeError(f"step {self.name}: parameter {p.name!r} has no type annotation")
            out.append((p.name, self._hints[p.name]))
        return tuple(out)

    @cached_property
    def options(self) -> tuple[str, ...]:
        """Its keyword-only parameters: the options a DAG task or the CLI passes."""
        params = inspect.signature(self.fn).parameters.values()
        if any(p.kind == p.VAR_KEYWORD for p in params):
            return ("**",)  # e.g. a trainer's hyperparameters: any keyword
        return tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY)

    @cached_property
    def result(self) -> Any:
        if "return" not in self._hints:
            raise TypeError(f"step {self.name}: {self.fn.__qualname__} has no return annotation")
        return self._hints["return"]

    def decode_inputs(self, inputs: list) -> list:
        """The step's typed inputs from their JSON (XComs, ``--input``), each checked."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"step {self.qualname} takes {len(self.inputs)} input(s) "
                             f"({', '.join(n for n, _ in self.inputs)}), got {len(inputs)}")
        out = []
        for (pname, tp), value in zip(self.inputs, inputs, strict=True):
            try:
                out.append(decode(value, tp))
            except ValueError as exc:
                raise ValueError(f"step {self.qualname}: input {pname!r} is not what it takes: "
                                 f"{exc}") from None
        return out

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def step(fn: Callable, does: str, *, name: str | None = None, pod: Pod | None = None,
         writes: Iterable[str] = ()) -> Step:
    """Declare ``fn`` as a step: ``does`` in a line; ``name`` its task id (default: the
    function's name); ``pod`` what it needs as a pod (none: never one); ``writes`` its zones."""
    writes = tuple(writes)
    for zone in writes:
        declare_zone(zone)
    return Step(fn=fn, does=does, name=name or fn.__name__, pod=pod, writes=writes)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return " | ".join(_type_name(a) for a in args)
    if args:
        return f"{getattr(typing.get_origin(tp), '__name__', tp)}[{', '.join(map(_type_name, args))}]"
    return getattr(tp, "__name__", str(tp))


def _core(tp: Any) -> tuple[Any, bool, bool]:
    """(the type, optional?, a list of it?) of an input annotation."""
    optional = False
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(rest) < len(typing.get_args(tp))
        tp = rest[0] if len(rest) == 1 else tp
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0], optional, True
    return tp, optional, False


def _produces(step_: Step, tp: Any) -> bool:
    res, _, _ = _core(step_.result)
    return res is tp or (isinstance(res, type) and isinstance(tp, type) and issubclass(res, tp))


class Flow:
    """A flow's steps in order (task id -> :class:`Step`), the DAG that runs them (if any)."""

    def __init__(self, name: str, steps: Iterable[Step], *, dag: str | None = None):
        self.name, self.dag = name, dag
        self.steps: dict[str, Step] = {}
        for s in steps:
            if s.name in self.steps:
                raise ValueError(f"flow {name}: two steps named {s.name!r}")
            self.steps[s.name] = s if s.flow else replace(s, flow=name)

    def __iter__(self):
        return iter(self.steps.values())

    def __getitem__(self, name: str) -> Step:
        return self.steps[name]

    @property
    def task_ids(self) -> list[str]:
        return list(self.steps)

    def sources(self, s: Step, args: Iterable[str] | None = None) -> list[tuple[str, list[str]]]:
        """Where each input of ``s`` comes from in this flow: (parameter, [producing steps])
        for a result of the steps before (the latest producer; a list input takes them all),
        or (parameter, []) for a run argument: one named in ``args`` (any input no step before
        returns, when ``args`` is None), or an optional input nothing gives (None)."""
        before = list(self.steps.values())[: list(self.steps).index(s.name)]
        out = []
        for pname, tp in s.inputs:
            if args is not None and pname in args:
                out.append((pname, []))
                continue
            core, optional, many = _core(tp)
            producers = [b.name for b in before if _produces(b, core)]
            if not producers and (optional or args is None):
                out.append((pname, []))
                continue
            if not producers:
                raise TypeError(f"flow {self.name}: step {s.name} takes {pname}: "
                                f"{_type_name(tp)}, which no step before it returns and no "
                                "run argument gives")
            out.append((pname, producers if many else producers[-1:]))
        return out

    def run(self, settings: Settings, *, skip: Iterable[str] = (), options: dict | None = None,
            seconds: dict | None = None, **args: Any) -> dict[str, Any]:
        """Every step in order, in this process, each handed the results of the steps before
        (and the run arguments ``args`` its parameters name); ``options``: task id -> keyword
        options. A step whose required input is None (its producer had nothing to do) is not
        run and yields None. Returns task id -> result; ``seconds`` collects each step's time."""
        import time

        results: dict[str, Any] = {}
        skip = set(skip)
        for s in self:
            if s.name in skip:
                continue
            values, missing = [], False
            for (pname, producers), (_, tp) in zip(self.sources(s, args), s.inputs, strict=True):
                _, optional, many = _core(tp)
                if not producers:
                    values.append(args.get(pname))
                    continue
                got = [results.get(p) for p in producers if results.get(p) is not None]
                value = got if many else (got[0] if got else None)
                missing |= value is None and not optional
                values.append(value)
            if missing:
                results[s.name] = None
                continue
            t0 = time.perf_counter()
            results[s.name] = s.fn(*values, settings=settings, **(options or {}).get(s.name, {}))
            if seconds is not None:
                seconds[s.name] = round(time.perf_counter() - t0, 2)
        return results

    def table(self) -> str:
        """The flow's steps as the reStructuredText table its module's docstring shows."""
        rows = [("task / step", "takes", "returns", "as a pod", "does")]
        for s in self:
            pod = f"{s.pod.cpu} CPU, {s.pod.memory}" + (", GPU" if s.pod.gpu else "") + \
                (", Spark" if s.pod.spark else "") if s.pod else "no"
            name = s.name if s.flow == self.name else f"{s.name} ({s.flow})"
            rows.append((name, ", ".join(_type_name(t) for _, t in s.inputs) or "-",
                         _type_name(s.result), pod, s.does))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        rule = "  ".join("=" * w for w in widths)
        fmt = [("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip() for r in rows]
        return "\n".join([rule, fmt[0], rule, *fmt[1:], rule])


# ---------------------------------------------------------------------------- every flow's steps
@cache
def flows() -> dict[str, Flow]:
    """Every flow module's ``FLOW`` under ``tasks/flows/``, by name (found, not listed)."""
    import tasks.flows as package

    out: dict[str, Flow] = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        flow = getattr(importlib.import_module(f"tasks.flows.{mod}"), "FLOW", None)
        if isinstance(flow, Flow):
            out[flow.name] = flow
    return out


def all_steps() -> dict[str, Step]:
    """Every declared step by ``flow.step`` (a step a flow borrows is listed once, at home)."""
    return {s.qualname: s for f in flows().values() for s in f}


def pod_steps() -> dict[str, Step]:
    """The steps that may run as Kubernetes pods, by task id (what FLIGHTLINE_K8S_STEPS names)."""
    out: dict[str, Step] = {}
    for s in all_steps().values():
        if s.pod is not None:
            if s.name in out and out[s.name] is not s:
                raise ValueError(f"two pod steps have the task id {s.name!r}: "
                                 f"{out[s.name].qualname} and {s.qualname}")
            out[s.name] = s
    return out


def find(name: str) -> Step:
    """A step by ``flow.step``, or by task id when only one flow declares it."""
    steps = all_steps()
    if name in steps:
        return steps[name]
    by_id = [s for s in steps.values() if s.name == name]
    if len(by_id) == 1:
        return by_id[0]
    raise ValueError(f"unknown step {name!r}; the steps: {', '.join(sorted(steps))}")


def run_step(name: str, inputs: list, settings: Settings, options: dict | None = None) -> Any:
    """Run step ``name`` (``flow.step``) on ``inputs`` (the results of the steps before or the
    run's arguments, as JSON: XComs, ``--input``) with keyword ``options``; the step's result as
    JSON (None when it has nothing to do). What a DAG task, ``flightline step`` and a pod run.

    ``options["notice"]`` (``{"attempt", "per_attempt"}``, a trainer on spot capacity) becomes
    the interruption notice the trainer watches."""
    s = find(name)
    args = s.decode_inputs(list(inputs))
    options = dict(options or {})
    unknown = set(options) - set(s.options)
    if unknown and "**" not in s.options:
        raise ValueError(f"step {s.qualname} has no option(s) {', '.join(sorted(unknown))}; "
                         f"its options: {', '.join(s.options) or 'none'}")
    if isinstance(options.get("notice"), dict):
        from tasks.cost.interruption import notice_for

        n = options["notice"]
        options["notice"] = notice_for(int(n["attempt"]), options["run_key"], settings,
                                       per_attempt=int(n["per_attempt"]))
    return encode(s.fn(*args, settings=settings, **options), s.result)
