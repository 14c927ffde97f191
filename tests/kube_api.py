"""A Kubernetes API server for the tests: stateful, over real HTTP on loopback, with a scripted
kubelet, the garbage collector and the Kubeflow MPI operator's part.

No cluster can run on the test machines (no kube-apiserver, kubelet or cluster tool among the
installable packages), so the pod path runs against this: the cncf-kubernetes provider's
operators and the real ``kubernetes`` client talk to it through a kubeconfig, as they would to a
cluster. What it serves is what those clients use:

- pods, events and custom objects (MPIJobs): create, get, list with label and field selectors,
  merge patch, delete (with ``ownerReferences`` cascading, as the garbage collector does);
- a pod's ``log`` (following while the container runs, with timestamps) and ``exec`` over a
  WebSocket (``v4.channel.k8s.io``): the XCom sidecar's ``cat`` of ``return.json`` and its kill;
- a kubelet per pod, scripted by the test (:class:`Script`): Pending and unschedulable, image
  pull errors, running a real process (the pod's own command, or a scripted one) whose output is
  the container log and whose exit code is the container's, a spot reclaim (node shut down), and
  deletion stopping the process (SIGTERM, then SIGKILL after the grace period);
- a Spark driver's executor pods (owned by the driver pod the driver's conf names) and the MPI
  operator's launcher and worker pods (owned by the MPIJob), with the job's conditions.

kmock (PyPI) was tried first: its emulator ignores label selectors, assigns no uid or
resourceVersion (so no ownerReferences) and serves neither logs nor exec, which the pod operator
needs; this module is the part of the API server the operators exercise, nothing more.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

XCOM_SIDECAR = "airflow-xcom-sidecar"
GROUP_MPI = "kubeflow.org"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Script:
    """What the kubelet does with a pod (matched by the test on the pod's labels).

    ``run``: run the container (its own command, or ``logs`` printed, ``result`` written to the
    ``--result-file`` argument, then ``exit_code``; ``hang`` seconds of work before exiting).
    ``unschedulable``: stay Pending with the scheduler's message. ``image_pull``: the container
    waits with this reason (``ErrImagePull``/``ImagePullBackOff``). ``reclaim_after``: the node
    is shut down after this many seconds of running (a spot reclaim): the process gets SIGTERM
    and the pod ends Failed with the kubelet's reason and a ``DisruptionTarget`` condition.
    ``spark_executors``: as a Spark driver, create that many executor pods owned by the driver
    pod named in the pod's own Spark conf."""

    run: str = "own"  # "own": the pod's command; "scripted": logs/result/exit_code/hang
    logs: list[str] = field(default_factory=list)
    result: Any = None
    exit_code: int = 0
    reason: str = ""  # the container's terminated reason (e.g. OOMKilled); default Completed/Error
    hang: float = 0.0
    unschedulable: str = ""
    image_pull: str = ""
    reclaim_after: float | None = None
    reclaim_tries: tuple[int, ...] = (1,)  # the Airflow tries (pod label) whose pod is reclaimed
    spark_executors: int = 0
    start_delay: float = 0.3


SCRIPTED = r"""
import json, os, sys, time
spec = json.loads(sys.argv[1])
for line in spec["logs"]:
    print(line, flush=True)
end = time.time() + spec["hang"]
while time.time() < end:
    time.sleep(0.1)
if spec["result_file"] and spec["result"] is not None:
    os.makedirs(os.path.dirname(spec["result_file"]), exist_ok=True)
    with open(spec["result_file"], "w") as f:
        json.dump(spec["result"], f)
sys.exit(spec["exit_code"])
"""


def _match_labels(labels: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict, path: str) -> Any:
    for part in path.split("."):
        obj = (obj or {}).get(part) if isinstance(obj, dict) else None
    return obj


def _match_fields(obj: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        neg = "!=" in term
        k, v = term.split("!=" if neg else "=", 1)
        v = v.lstrip("=")
        if (str(_field(obj, k)) == v) == neg:
            return False
    return True


def _merge(into: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            into.pop(k, None)
        elif isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)


def status_error(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "code": code, "reason": reason,
                              "message": message}, status=code)


class Cluster:
    """The API server on ``127.0.0.1:<port>`` in a thread of its own; ``kubeconfig`` points at it.

    ``scripts`` maps a label value (``flightline.io/step``, or an MPI role ``launcher``/
    ``worker``, or ``executor``) to the :class:`Script` its pods follow, or to a function of the
    pod giving one (e.g. by its ``try_number`` label); unmatched pods run their own command."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind path, namespace, name)
        self.events: list[dict] = []
        self.logs: dict[str, list[str]] = {}  # pod name -> timestamped lines
        self.scripts: dict[str, Script] = {}
        self.deleted: dict[str, float] = {}  # pod name -> when it was deleted
        self.requests: list[tuple[str, str]] = []
        self.envs: dict[str, dict[str, str]] = {}  # pod name -> its container's environment
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._pumps: set[asyncio.Task] = set()
        self._kubelets: dict[str, asyncio.Task] = {}
        self._rv = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="kube-api")
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Cluster:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes API mock did not start")
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "mock",
            "clusters": [{"name": "mock", "cluster": {"server": self.url}}],
            "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "mock",
                                                      "namespace": "flightline"}}],
            "users": [{"name": "mock", "user": {"token": "test-token"}}],
        }))
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            for task in self._kubelets.values():
                task.cancel()
            for name in list(self._procs):
                await self._stop_process(name, grace=0)
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection_env(self) -> dict[str, str]:
        """The Airflow connection the provider's hook reads (``kubernetes_default``)."""
        return {"AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps({
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(self.kubeconfig), "in_cluster": False}})}

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start():
            self._runner = web.ServerRunner(web.Server(self._dispatch))
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    # ------------------------------------------------------------------ what tests read
    def call(self, fn, *args):
        """Run ``fn(*args)`` in the server's loop (the state is the loop's alone)."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def pods(self, **labels: str) -> dict[str, dict]:
        def read():
            return {n: copy.deepcopy(o) for (kind, _, n), o in self.objects.items()
                    if kind == "pods" and all(o["metadata"].get("labels", {}).get(k) == v
                                              for k, v in labels.items())}
        return self.call(read)

    def left(self) -> list[str]:
        """Every object still in the API server and every container process still running."""
        def read():
            return sorted([f"{k}/{n}" for (k, _, n) in self.objects]
                          + [f"process of {n}" for n, p in self._procs.items() if p.returncode is None])
        return self.call(read)

    def wait_for(self, what, timeout: float = 60, every: float = 0.2):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = what()
            if got:
                return got
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout} s waiting for {getattr(what, '__name__', what)}")

    # ------------------------------------------------------------------ HTTP
    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        parts = [p for p in request.path.split("/") if p]
        try:
            if parts == ["version"]:
                return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
            if parts[:2] == ["api", "v1"] and len(parts) >= 5 and parts[2] == "namespaces":
                ns, kind, rest = parts[3], parts[4], parts[5:]
                if kind == "pods" and len(rest) == 2 and rest[1] == "log":
                    return await self._log(request, ns, rest[0])
                if kind == "pods" and len(rest) == 2 and rest[1] == "exec":
                    return await self._exec(request, ns, rest[0])
                return await self._crud(request, kind, ns, rest[0] if rest else None)
            if parts[:1] == ["apis"] and len(parts) >= 6 and parts[3] == "namespaces":
                kind = "/".join([parts[1], parts[2], parts[5]])
                return await self._crud(request, kind, parts[4], parts[6] if len(parts) > 6 else None)
            return status_error(404, "NotFound", f"the server could not find {request.path}")
        except Exception as exc:  # a bug here must show in the client's error, not hang it
            return status_error(500, "InternalError", repr(exc))

    async def _crud(self, request: web.BaseRequest, kind: str, ns: str, name: str | None) -> web.Response:
        key = (kind, ns, name)
        if request.method == "POST" and name is None:
            body = await request.json()
            meta = body.setdefault("metadata", {})
            if meta.get("generateName") and not meta.get("name"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            key = (kind, ns, meta["name"])
            if key in self.objects:
                return status_error(409, "AlreadyExists", f'{kind} "{meta["name"]}" already exists')
            meta.update(namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(next(self._rv)),
                        creationTimestamp=now())
            self.objects[key] = body
            if kind == "pods":
                body.setdefault("status", {"phase": "Pending"})
                self._start_kubelet(body)
            elif kind.endswith("/mpijobs"):
                self._kubelets[f"mpijob/{meta['name']}"] = asyncio.create_task(self._mpi_operator(body))
            return web.json_response(body, status=201)
        if request.method == "GET" and name is None:
            label_sel = request.query.get("labelSelector", "")
            field_sel = request.query.get("fieldSelector", "")
            source = self.events if kind == "events" else \
                [o for (k, n_, _), o in self.objects.items() if k == kind and n_ == ns]
            items = [copy.deepcopy(o) for o in source
                     if _match_labels(o["metadata"].get("labels", {}), label_sel)
                     and _match_fields(o, field_sel)]
            return web.json_response({"kind": "List", "apiVersion": "v1", "items": items,
                                      "metadata": {"resourceVersion": str(next(self._rv))}})
        if key not in self.objects:
            return status_error(404, "NotFound", f'{kind} "{name}" not found')
        obj = self.objects[key]
        if request.method == "GET":
            return web.json_response(obj)
        if request.method == "PATCH":
            _merge(obj, await request.json())
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            return web.json_response(obj)
        if request.method == "DELETE":
            body = await request.json() if request.can_read_body else {}
            grace = request.query.get("gracePeriodSeconds", (body or {}).get("gracePeriodSeconds"))
            await self._delete(key, grace=float(grace) if grace is not None else 30.0)
            return web.json_response(obj)
        return status_error(405, "MethodNotAllowed", request.method)

    async def _delete(self, key: tuple[str, str, str], grace: float = 30.0) -> None:
        obj = self.objects.pop(key, None)
        if obj is None:
            return
        kind, _, name = key
        if kind == "pods":
            self.deleted[name] = time.monotonic()
            task = self._kubelets.pop(name, None)
            if task:
                task.cancel()
            await self._stop_process(name, grace=min(grace, 5.0))
        elif f"mpijob/{name}" in self._kubelets:
            self._kubelets.pop(f"mpijob/{name}").cancel()
        # the garbage collector: dependents go with their owner (background propagation)
        uid = obj["metadata"]["uid"]
        for dep_key, dep in list(self.objects.items()):
            if any(r.get("uid") == uid for r in dep["metadata"].get("ownerReferences", [])):
                await self._delete(dep_key, grace=grace)

    # ------------------------------------------------------------------ logs and exec
    async def _log(self, request: web.BaseRequest, ns: str, name: str) -> web.StreamResponse:
        if ("pods", ns, name) not in self.objects:
            return status_error(404, "NotFound", f'pods "{name}" not found')
        stamps = request.query.get("timestamps", "").lower() == "true"
        follow = request.query.get("follow", "").lower() == "true"
        since = request.query.get("sinceSeconds")
        cutoff = time.time() - float(since) if since else 0.0
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        sent = 0
        while True:
            lines = self.logs.get(name, [])
            for stamp, text in lines[sent:]:
                if stamp >= cutoff:
                    ts = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    await resp.write(((ts + " ") if stamps else "").encode() + text.encode() + b"\n")
            sent = len(lines)
            if not follow or not self._running(name):
                break
            await asyncio.sleep(0.1)
        await resp.write_eof()
        return resp

    def _running(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.returncode is None

    async def _exec(self, request: web.BaseRequest, ns: str, name: str) -> web.StreamResponse:
        pod = self.objects.get(("pods", ns, name))
        container = request.query.get("container")
        command = " ".join(request.query.getall("command", []))
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        if pod is None or container != XCOM_SIDECAR:
            await ws.send_bytes(b"\x03" + json.dumps({"status": "Failure", "message": "no such container"}).encode())
            await ws.close()
            return ws
        if "return.json" in command:  # the sidecar's cat of the step's result
            path = self.workdir / name / "xcom" / "return.json"
            out = path.read_text() if path.exists() and path.stat().st_size else "__airflow_xcom_result_empty__\n"
            await ws.send_bytes(b"\x01" + out.encode())
            await ws.send_bytes(b"\x03" + json.dumps({"status": "Success"}).encode())
            await ws.close()
            return ws
        async for msg in ws:  # the kill: whatever comes on stdin stops the sidecar
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                self._set_container(pod, XCOM_SIDECAR, {"terminated": {"exitCode": 0, "reason": "Completed"}})
                self._settle(pod)
                break
        await ws.close()
        return ws

    # ------------------------------------------------------------------ the kubelet
    def _script(self, pod: dict) -> Script:
        labels = pod["metadata"].get("labels", {})
        for key in ("spark-role", "training.kubeflow.org/job-role", "flightline.io/step"):
            if labels.get(key) in self.scripts:
                script = self.scripts[labels[key]]
                return script(pod) if callable(script) else script
        if labels.get("spark-role") == "executor":  # an executor waits for its driver's work
            return Script(run="scripted", hang=3600)
        return Script()

    def _start_kubelet(self, pod: dict) -> None:
        self._kubelets[pod["metadata"]["name"]] = asyncio.create_task(self._kubelet(pod))

    def _event(self, pod: dict, kind: str, reason: str, message: str) -> None:
        self.events.append({
            "metadata": {"name": f"{pod['metadata']['name']}.{uuid.uuid4().hex[:8]}",
                         "namespace": pod["metadata"]["namespace"], "uid": str(uuid.uuid4()),
                         "resourceVersion": str(next(self._rv))},
            "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"],
                               "namespace": pod["metadata"]["namespace"], "uid": pod["metadata"]["uid"]},
            "type": kind, "reason": reason, "message": message, "lastTimestamp": now()})

    def _set_container(self, pod: dict, name: str, state: dict) -> None:
        statuses = pod["status"].setdefault("containerStatuses", [])
        for s in statuses:
            if s["name"] == name:
                s["state"] = state
                s["ready"] = "running" in state
                return
        image = next((c["image"] for c in pod["spec"]["containers"] if c["name"] == name), "")
        statuses.append({"name": name, "image": image, "imageID": "", "restartCount": 0,
                         "ready": "running" in state, "started": "running" in state, "state": state})

    def _settle(self, pod: dict) -> None:
        """The pod's phase from its containers: Running while any runs, then Succeeded or Failed."""
        states = [s["state"] for s in pod["status"].get("containerStatuses", [])]
        if states and all("terminated" in s for s in states):
            ok = all(s["terminated"]["exitCode"] == 0 for s in states)
            pod["status"]["phase"] = "Succeeded" if ok else "Failed"
        pod["metadata"]["resourceVersion"] = str(next(self._rv))

    async def _kubelet(self, pod: dict) -> None:
        script = self._script(pod)
        name = pod["metadata"]["name"]
        status = pod["status"]
        await asyncio.sleep(script.start_delay)
        if script.unschedulable:
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": script.unschedulable, "lastTransitionTime": now()}]
            self._event(pod, "Warning", "FailedScheduling", script.unschedulable)
            return
        status["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}]
        pod["spec"]["nodeName"] = "node-1"
        self._event(pod, "Normal", "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/{name} to node-1")
        main = pod["spec"]["containers"][0]
        if script.image_pull:
            message = (f'Back-off pulling image "{main["image"]}": ErrImagePull: failed to pull and unpack '
                       f'image "{main["image"]}": not found' if script.image_pull == "ImagePullBackOff" else
                       f'failed to pull and unpack image "{main["image"]}": not found')
            for c in pod["spec"]["containers"]:
                self._set_container(pod, c["name"], {"waiting": {"reason": script.image_pull, "message": message}})
            self._event(pod, "Warning", "Failed", f'Failed to pull image "{main["image"]}": not found')
            pod["metadata"]["resourceVersion"] = str(next(self._rv))
            return
        status.update(phase="Running", podIP="127.0.0.1", hostIP="127.0.0.1", startTime=now())
        for c in pod["spec"]["containers"]:
            self._set_container(pod, c["name"], {"running": {"startedAt": now()}})
        self._settle(pod)
        proc = await self._start_process(pod, script)
        if script.spark_executors:
            await self._spark_executors(pod, script.spark_executors)
        try_number = int(pod["metadata"].get("labels", {}).get("try_number", "1"))
        if script.reclaim_after is not None and try_number in script.reclaim_tries:
            await asyncio.sleep(script.reclaim_after)
            if proc.returncode is None:
                await self._stop_process(name, grace=2)
            self._set_container(pod, main["name"], {"terminated": {
                "exitCode": proc.returncode if proc.returncode is not None else 143, "reason": "Error"}})
            for c in pod["spec"]["containers"][1:]:
                self._set_container(pod, c["name"], {"terminated": {"exitCode": 137, "reason": "Error"}})
            status.update(phase="Failed", reason="Terminated",
                          message="Pod was terminated in response to imminent node shutdown.")
            status["conditions"].append({"type": "DisruptionTarget", "status": "True",
                                         "reason": "TerminationByKubelet", "lastTransitionTime": now(),
                                         "message": "Pod was terminated in response to imminent node shutdown."})
            self._event(pod, "Warning", "Shutdown", "Node is shutting down (spot interruption)")
            self._settle(pod)
            return
        code = await proc.wait()
        self._set_container(pod, main["name"], {"terminated": {
            "exitCode": code, "reason": script.reason or ("Completed" if code == 0 else "Error"),
            "finishedAt": now()}})
        self._settle(pod)

    async def _start_process(self, pod: dict, script: Script) -> asyncio.subprocess.Process:
        name = pod["metadata"]["name"]
        main = pod["spec"]["containers"][0]
        home = self.workdir / name
        (home / "xcom").mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "JAVA_HOME": os.environ.get("JAVA_HOME", ""),
               "PYTHONUNBUFFERED": "1"}
        fields = {"status.podIP": "127.0.0.1", "metadata.name": name,
                  "metadata.namespace": pod["metadata"]["namespace"]}
        for e in main.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif (e.get("valueFrom") or {}).get("fieldRef"):
                env[e["name"]] = fields.get(e["valueFrom"]["fieldRef"]["fieldPath"], "")
        args = [str(home / "xcom" / "return.json") if a == "/airflow/xcom/return.json" else a
                for a in main.get("args", [])]
        self.envs[name] = env  # what the process saw
        if script.run == "own":
            exe = shutil.which(main["command"][0], path=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
            if exe is None:
                raise FileNotFoundError(f"{name}: no {main['command'][0]} here to run")
            argv = [exe, *args]
        else:
            result_file = args[args.index("--result-file") + 1] if "--result-file" in args else ""
            spec = {"logs": script.logs, "result": script.result, "exit_code": script.exit_code,
                    "hang": script.hang, "result_file": result_file}
            argv = [sys.executable, "-c", SCRIPTED, json.dumps(spec)]
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=home, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
        self._procs[name] = proc
        lines = self.logs.setdefault(name, [])

        async def pump():
            async for raw in proc.stdout:
                lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))
        self._pumps.add(asyncio.create_task(pump()))
        return proc

    async def _stop_process(self, name: str, grace: float) -> None:
        proc = self._procs.get(name)
        if proc is None or proc.returncode is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), grace)
        except (TimeoutError, ProcessLookupError):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()

    async def _spark_executors(self, driver: dict, count: int) -> None:
        """What Spark's driver does in Kubernetes mode: executor pods owned by the driver pod its
        conf names (``spark.kubernetes.driver.pod.name``); no owner named, no owner set."""
        from tasks.settings import Settings
        from tasks.spark import kubernetes_conf

        env = self.envs[driver["metadata"]["name"]]
        conf = kubernetes_conf(Settings.from_env(env), env)
        owner = conf.get("spark.kubernetes.driver.pod.name")
        owned = self.objects.get(("pods", driver["metadata"]["namespace"], owner or ""))
        for i in range(1, min(count, int(conf.get("spark.executor.instances", count))) + 1):
            meta = {"name": f"{driver['metadata']['name']}-exec-{i}", "namespace": driver["metadata"]["namespace"],
                    "uid": str(uuid.uuid4()), "resourceVersion": str(next(self._rv)),
                    "labels": {"spark-role": "executor", "spark-exec-id": str(i)}}
            if owned is not None:
                meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": owner,
                                            "uid": owned["metadata"]["uid"], "controller": True}]
            pod = {"metadata": meta, "spec": {"containers": [
                {"name": "spark-kubernetes-executor", "image": conf.get("spark.kubernetes.container.image", ""),
                 "command": ["sleep"], "args": ["3600"]}]}, "status": {"phase": "Pending"}}
            self.objects[("pods", meta["namespace"], meta["name"])] = pod
            self._start_kubelet(pod)

    # ------------------------------------------------------------------ the MPI operator
    async def _mpi_operator(self, job: dict) -> None:
        """Kubeflow's MPI operator, the part the Flightline operator relies on: a launcher pod
        and the workers, owned by the MPIJob; the job's condition from their ends."""
        meta = job["metadata"]
        name, ns = meta["name"], meta["namespace"]
        specs = job["spec"]["mpiReplicaSpecs"]
        made = []
        for role, spec, count in (("worker", specs["Worker"], specs["Worker"]["replicas"]),
                                  ("launcher", specs["Launcher"], 1)):
            for i in range(count):
                pod_name = f"{name}-launcher" if role == "launcher" else f"{name}-worker-{i}"
                tmpl = copy.deepcopy(spec["template"])
                labels = {**tmpl.get("metadata", {}).get("labels", {}),
                          "training.kubeflow.org/job-name": name, "training.kubeflow.org/job-role": role}
                pod = {"metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                                    "uid": str(uuid.uuid4()), "resourceVersion": str(next(self._rv)),
                                    "ownerReferences": [{"apiVersion": f"{GROUP_MPI}/v2beta1", "kind": "MPIJob",
                                                         "name": name, "uid": meta["uid"], "controller": True}]},
                       "spec": tmpl["spec"], "status": {"phase": "Pending"}}
                self.objects[("pods", ns, pod_name)] = pod
                self._start_kubelet(pod)
                made.append(pod)
        job["status"] = {"conditions": [{"type": "Created", "status": "True", "lastTransitionTime": now()}]}
        while ("kubeflow.org/v2beta1/mpijobs", ns, name) in self.objects:
            await asyncio.sleep(0.2)
            failed = [p for p in made if p["status"].get("phase") == "Failed"]
            launcher = made[-1]
            if failed or launcher["status"].get("phase") == "Succeeded":
                kind = "Failed" if failed else "Succeeded"
                message = (f"{failed[0]['metadata']['name']} failed" if failed
                           else f"MPIJob {ns}/{name} successfully completed.")
                job["status"]["conditions"].append({"type": kind, "status": "True", "reason": f"MPIJob{kind}",
                                                    "message": message, "lastTransitionTime": now()})
                for p in made:  # cleanPodPolicy: Running
                    if p["status"].get("phase") == "Running":
                        await self._delete(("pods", ns, p["metadata"]["name"]), grace=1)
                return
