"""A small FastAPI app, mounted on the Airflow API server, that serves the reports zone.

``GET /flightline/reports/<path>`` returns a file from ``<data root>/reports/`` (local or S3),
so Data Docs and drift reports open from the task's extra link in the Airflow UI.
"""

from __future__ import annotations

import mimetypes


def create_app():
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import Response

    app = FastAPI(title="Flightline reports")

    @app.get("/reports/{path:path}")
    def report(path: str) -> Response:
        from tasks.settings import Settings
        from tasks.storage import StorageError, Store, join

        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") or p.startswith(".") for p in parts):
            raise HTTPException(status_code=404, detail="no such report")
        settings = Settings.from_env()
        uri = join(settings.zone("reports"), *parts)
        try:
            body = Store(settings).read_bytes(uri)
        except (StorageError, IsADirectoryError):
            raise HTTPException(status_code=404, detail=f"no report at {path}") from None
        media = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
        return Response(content=body, media_type=media)

    return app
