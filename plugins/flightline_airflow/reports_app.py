"""A small FastAPI app, mounted on the Airflow API server, that serves the reports zone.

``GET /flightline/reports/<path>`` returns a file from ``<data root>/reports/`` (local or S3),
so Data Docs and drift reports open from a task's extra link in the Airflow UI, and
``GET /flightline/costs/<dag>/<run>`` a run's cost page, ``GET /flightline/costs/report`` the
costs of a range of days (the UI's *Browse* menu opens it), and
``GET /flightline/models/<version>/<file>`` a registry version's evaluation plots (the release
approval links to them). All sit behind Airflow's own login: the
same auth manager and JWT as the UI and the REST API (the UI's ``_token`` cookie, or an
``Authorization: Bearer`` header), and read access to DAGs' task instances.

Report pages are third-party HTML (Great Expectations, Evidently: megabytes of inline script) on
the UI's origin, so each is sent with a Content-Security-Policy whose ``sandbox`` gives the page an
opaque origin of its own: its script can read no cookie or storage of the UI, and its requests
carry no login (the ``_token`` cookie is SameSite=Lax, and an opaque origin is another site), so it
cannot act as the logged-in user; ``connect-src 'none'`` refuses fetch and XHR outright.

HTML pages have their CDN assets rewritten to copies served by ``/flightline/static/``, so reports
render with no internet. Those copies are public open-source files (Bootstrap, jQuery, Vega, Font
Awesome; no data) and the one route served without the login: a sandboxed page's requests carry no
cookie. No OpenAPI or docs pages are exposed.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions' annotations
# at run time, and ``Request`` is imported inside create_app.
import mimetypes

mimetypes.add_type("font/woff2", ".woff2")
mimetypes.add_type("image/svg+xml", ".svg")
#: Where the plugin mounts the app on the API server.
URL_PREFIX = "/flightline"
STATIC_PREFIX = f"{URL_PREFIX}/static"
COSTS_PREFIX = f"{URL_PREFIX}/costs"
COST_REPORT_PATH = f"{COSTS_PREFIX}/report"


def _day(name: str, value: str):
    """A ``YYYY-MM-DD`` query parameter as a date, else a 400 that names the parameter."""
    import re
    from datetime import date

    from fastapi import HTTPException

    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=400, detail=f"{name} must be a date, YYYY-MM-DD "
                                                    f"(got {value[:40]!r})") from None


def _safe_parts(path: str) -> list[str] | None:
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") or "\\" in p
                        or any(ord(c) < 32 for c in p) for p in parts):
        return None
    return parts


def _inside(zone: str, uri: str) -> bool:
    """True when ``uri`` stays inside ``zone`` once links are followed (a symlink placed in the
    data root must not serve a file from outside it); S3 has no links."""
    from pathlib import Path

    from tasks.storage import is_s3

    if is_s3(uri):
        return True
    return Path(uri).resolve().is_relative_to(Path(zone).resolve())


#: The policy of every report and cost page: sandboxed (an opaque origin: no cookie, no storage,
#: no login on its requests), scripts and styles inline or from this origin only, no fetch/XHR,
#: no forms, framed by the UI only. Links still open (a top-level navigation carries the login).
CONTENT_SECURITY_POLICY = "; ".join((
    "sandbox allow-scripts allow-popups allow-downloads",
    "default-src 'none'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",  # Vega compiles its expressions
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'self'",
))

#: What every page of the reports app is sent with: sandboxed by its policy, never cached for
#: others, never sniffed into another type, never framed by another site.
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "same-origin"}

#: The vendored assets' headers: public and cacheable; fonts are fetched in CORS mode, and from a
#: sandboxed page's opaque origin ("null") they need ``Access-Control-Allow-Origin``.
STATIC_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff",
                  "Access-Control-Allow-Origin": "*"}


async def require_read_access(request) -> None:
    """Airflow's own check, as its REST API runs it for a task instance read: the user from the
    bearer token or the UI's cookie (401 without), allowed to read DAGs' task instances (403).

    Airflow's security module is imported here, at the first request, not when the plugin
    loads: every task process loads plugins, and that import costs it seconds.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi.security import HTTPAuthorizationCredentials

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    bearer = (HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)
              if scheme.lower() == "bearer" and credentials else None)
    user = await get_user(request, None, bearer)
    requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)(request, user)


def _run_state(dag_id: str, run_id: str) -> str | None:
    """The run's state in Airflow's metadata DB (this app runs in the API server); None when it
    cannot be read (the page then says what the cost ledger knows)."""
    try:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id,
                                                              DagRun.run_id == run_id))
        return str(getattr(state, "value", state)) if state is not None else None
    except Exception:  # no metadata DB here (a test app): the ledger's view
        return None


def create_app():
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import Response

    async def login_required(request: Request) -> None:
        await require_read_access(request)

    app = FastAPI(title="Flightline reports", docs_url=None, redoc_url=None, openapi_url=None)
    behind_login = [Depends(login_required)]

    @app.get("/reports/{path:path}", dependencies=behind_login)
    def report(path: str) -> Response:
        from tasks.settings import Settings
        from tasks.storage import ObjectMissing, Store, join

        parts = _safe_parts(path)
        if parts is None:
            raise HTTPException(status_code=404, detail="no such report")
        settings = Settings.from_env()
        zone = settings.zone("reports")
        uri = join(zone, *parts)
        if not _inside(zone, uri):
            raise HTTPException(status_code=404, detail=f"no report at {path}")
        try:
            body = Store(settings).read_bytes(uri)
        except (ObjectMissing, IsADirectoryError):
            raise HTTPException(status_code=404, detail=f"no report at {path}") from None
        media = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
        if media == "text/html":
            from flightline_airflow.web_assets import rewrite_html

            body = rewrite_html(body.decode("utf-8"), STATIC_PREFIX).encode("utf-8")
        return Response(content=body, media_type=media, headers=PAGE_HEADERS)

    @app.get("/costs/report", dependencies=behind_login)
    def cost_range(start: str | None = None, end: str | None = None) -> Response:
        """The costs of the runs whose day lies in [start, end] (both YYYY-MM-DD): totals per
        DAG, step and run with the saving, and the daily chart. Without a range: the last 30
        days of the ledger. Other ranges are links on the page (it is sent without forms)."""
        from datetime import timedelta

        from tasks.cost.report import ledger_days, report_page
        from tasks.settings import Settings

        settings = Settings.from_env()
        if (start is None) != (end is None):
            raise HTTPException(status_code=400, detail="give both start and end (YYYY-MM-DD), "
                                                        "or neither for the last 30 days")
        if start is None:
            bounds = ledger_days(settings)
            if bounds is None:
                from datetime import date

                bounds = (date.today(), date.today())
            last = bounds[1]
            first = max(bounds[0], last - timedelta(days=29))
        else:
            first, last = _day("start", start), _day("end", end)
            if last < first:
                raise HTTPException(status_code=400, detail=f"end {last} is before start {first}")
        page = report_page(first, last, settings, report_path=COST_REPORT_PATH,
                           run_path=COSTS_PREFIX)
        return Response(content=page, media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/costs/{dag_id}/{run_id}", dependencies=behind_login)
    def run_cost(dag_id: str, run_id: str) -> Response:
        """One run's cost ledger (what each task's Cost button opens); 404 for a run the ledger
        has no attempt of (an unknown run, or one whose first task has not ended yet)."""
        from tasks.cost.ledger import run_summary
        from tasks.cost.report import run_page
        from tasks.settings import Settings

        settings = Settings.from_env()
        if not run_summary(dag_id, run_id, settings)["attempts"]:
            raise HTTPException(status_code=404, detail="no task attempt of this run is recorded "
                                                        "in the cost ledger (yet)")
        return Response(content=run_page(dag_id, run_id, settings, report_path=COST_REPORT_PATH,
                                         state=_run_state(dag_id, run_id)),
                        media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/models/{version}/{name}", dependencies=behind_login)
    def model_file(version: str, name: str) -> Response:
        """A registry version's evaluation plot or metrics (what the release approval links
        to): only the files its card lists, and only images and JSON."""
        from tasks.settings import Settings
        from tasks.storage import Store, join
        from tasks.training import registry

        settings = Settings.from_env()
        if _safe_parts(version) != [version] or not name.endswith((".png", ".json")):
            raise HTTPException(status_code=404, detail="no such model file")
        try:
            card = registry.show(version, settings)
        except Exception:
            raise HTTPException(status_code=404, detail=f"no registry version {version}") from None
        if name not in card.get("files", []):
            raise HTTPException(status_code=404, detail=f"{version} has no file {name}")
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(content=Store(settings).read_bytes(join(card["uri"], name)),
                        media_type=media, headers=PAGE_HEADERS)

    @app.get("/static/{path:path}")  # public: see the module's docstring
    def static(path: str) -> Response:
        from flightline_airflow.web_assets import STATIC_DIR

        parts = _safe_parts(path)
        target = STATIC_DIR.joinpath(*parts) if parts else None
        if target is None or not target.is_file() or not _inside(str(STATIC_DIR), str(target)):
            raise HTTPException(status_code=404, detail="no such asset")
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(content=target.read_bytes(), media_type=media, headers=STATIC_HEADERS)

    return app
