"""The Great Expectations context a gate validates in, and where a day's Data Docs go.

One site per day (``reports/data_docs/dt=YYYY-MM-DD/``, results in
``reports/gx_validations/dt=YYYY-MM-DD/``): a gate renders only its own day's few results, so its
cost does not grow with the history. ``reports/data_docs/index.html`` lists the days.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path

from tasks.settings import Settings
from tasks.storage import Store, is_s3, join

DOCS_FOLDER = "data_docs"
RESULTS_FOLDER = "gx_validations"


def ge_context(docs_dir: Path, results_dir: Path):
    """An in-memory GE context whose validation results and Data Docs site are these folders."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    cfg = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
    )
    cfg.stores["validation_results_store"]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(results_dir),
    }
    cfg.data_docs_sites = {
        "flightline": {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    return gx.get_context(project_config=cfg)


def docs_path(day: date) -> str:
    """Path of a day's Data Docs site under the reports zone (what a gate's link opens)."""
    return f"{DOCS_FOLDER}/dt={day.isoformat()}/index.html"


class DocsTarget:
    """Where one day's Data Docs site and GE's validation store for that day live, as a context.

    Locally the folders are the reports zone's own. On S3 they are staged in a temporary folder
    (the day's earlier results downloaded first) and uploaded when the block ends without error;
    the temporary folder is removed either way. The index of days is rewritten at the end.
    """

    def __init__(self, settings: Settings, day: date):
        self.settings = settings
        self.store = Store(settings)
        self.reports = settings.zone("reports")
        self.part = f"dt={day.isoformat()}"
        self.tmp: Path | None = None

    def __enter__(self) -> DocsTarget:
        if is_s3(self.reports):
            self.tmp = Path(tempfile.mkdtemp(prefix="flightline-docs-"))
            self.docs_dir, self.results_dir = self.tmp / DOCS_FOLDER, self.tmp / RESULTS_FOLDER
            try:
                remote = join(self.reports, RESULTS_FOLDER, self.part)
                for uri in self.store.walk_files(remote):
                    self.store.download(uri, self.results_dir / uri[len(remote) + 1:])
            except BaseException:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise
        else:
            self.docs_dir = Path(self.reports) / DOCS_FOLDER / self.part
            self.results_dir = Path(self.reports) / RESULTS_FOLDER / self.part
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.tmp is not None:
                for local, folder in ((self.docs_dir, DOCS_FOLDER),
                                      (self.results_dir, RESULTS_FOLDER)):
                    remote = join(self.reports, folder, self.part)
                    for p in sorted(local.rglob("*")):
                        if p.is_file():
                            self.store.upload_file(p, join(remote, p.relative_to(local).as_posix()))
        finally:
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
        if exc_type is None:
            write_docs_index(self.settings)

    @property
    def index_uri(self) -> str:
        return join(self.reports, DOCS_FOLDER, self.part, "index.html")


def write_docs_index(settings: Settings) -> str:
    """``reports/data_docs/index.html``: one link per day's Data Docs site, newest first."""
    import html

    store = Store(settings)
    folder = join(settings.zone("reports"), DOCS_FOLDER)
    days = sorted((n for n in store.list(folder) if n.startswith("dt=")), reverse=True)
    rows = "\n".join(f'<li class="list-group-item"><a href="{html.escape(d)}/index.html">'
                     f"{html.escape(d[3:])}</a></li>" for d in days)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Flightline Data Docs</title>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
</head><body class="container py-4">
<h1 class="h3">Flightline Data Docs</h1>
<p>Great Expectations validation results of the quality gates, one site per day.</p>
<ul class="list-group">
{rows}
</ul></body></html>
"""
    return store.write_text(join(folder, "index.html"), page)
