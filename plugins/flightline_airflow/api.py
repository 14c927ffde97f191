"""One client of Airflow's public REST API, as a service user: what run notes, the cost
ledger's note and the live-stack test driver (``infra/live_airflow.py``) use (a hook, in the
provider-package sense).

Credentials come from the Airflow connection ``flightline_api`` (``AIRFLOW_CONN_FLIGHTLINE_API``
or any secrets backend; ``make airflow`` provides it for the local stack). A run's note is
written **by section**: each writer (a task, the cost listener) owns one section, keyed by its
name, that it sets again on a retry instead of adding a second one; the note keeps every
section, in the order they were first written, within Airflow's 1000 characters.
"""

from __future__ import annotations

import re
from urllib.parse import quote

API_CONN_ID = "flightline_api"
NOTE_LIMIT = 1000  # Airflow keeps at most 1000 characters of a note
_SECTION = re.compile(r"^([a-z][a-z0-9_]*): ")


def api_base(conn) -> str:
    """The API server's base URL from a connection (its host may carry the scheme)."""
    host = (conn.host or "").rstrip("/")
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    return host


def parse_note(note: str) -> dict[str, str]:
    """A note's sections (``name: text`` lines; a line without a name continues the last one)."""
    sections: dict[str, str] = {}
    last = ""
    for line in (note or "").splitlines():
        m = _SECTION.match(line)
        if m:
            last = m.group(1)
            sections[last] = line[m.end():]
        elif line.strip():
            sections[last] = f"{sections[last]} {line}".strip() if last in sections else line
    return sections


def merge_note(note: str, section: str, text: str, limit: int = NOTE_LIMIT) -> str:
    """``note`` with ``section`` set to ``text`` (others kept, in order), within ``limit``:
    the section being written is shortened first."""
    if not _SECTION.match(f"{section}: "):
        raise ValueError(f"note section {section!r}: lower-case letters, digits and _")
    sections = parse_note(note)
    sections[section] = " ".join(text.split())
    def render() -> str:  # a blank line between sections: the UI renders a note as Markdown
        return "\n\n".join(f"{k}: {v}" if k else v for k, v in sections.items())
    over = len(render()) - limit
    if over > 0:
        keep = max(len(sections[section]) - over - 3, 0)
        sections[section] = sections[section][:keep] + "..."
    out = render()
    return out if len(out) <= limit else out[-limit:]


class AirflowAPI:
    """``with AirflowAPI(base_url, user, password) as api: api.get(...)``: logged in once (a
    JWT from ``/auth/token``), each request authorised, errors raised as ``httpx`` errors."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 20):
        self.base_url, self.username, self.password, self.timeout = \
            base_url.rstrip("/"), username, password, timeout
        self._http = None
        self._headers: dict[str, str] = {}

    @classmethod
    def from_connection(cls, conn_id: str = API_CONN_ID, *, env_only: bool = False) -> AirflowAPI:
        """From an Airflow connection; ``env_only`` reads only ``AIRFLOW_CONN_<ID>`` (the
        scheduler's listener must not open a metadata-DB session). Raises LookupError without one."""
        if env_only:
            import os

            from airflow.sdk import Connection

            raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
            if not raw:
                raise LookupError(f"no {conn_id!r} connection in the environment")
            conn = (Connection.from_json(raw, conn_id=conn_id) if raw.lstrip().startswith("{")
                    else Connection.from_uri(raw, conn_id=conn_id))
        else:
            from airflow.sdk import BaseHook

            try:
                conn = BaseHook.get_connection(conn_id)
            except Exception as exc:  # AirflowNotFoundException: no service credentials here
                raise LookupError(f"no {conn_id!r} connection") from exc
        return cls(api_base(conn), conn.login or "", conn.password or "")

    def __enter__(self) -> AirflowAPI:
        import httpx

        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return self

    def __exit__(self, *exc) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def login(self) -> str:
        resp = self._http.post("/auth/token", json={"username": self.username,
                                                    "password": self.password})
        resp.raise_for_status()
        token = resp.json()["access_token"]
        self._headers = {"Authorization": f"Bearer {token}"}
        return token

    @property
    def token(self) -> str:
        return self._headers.get("Authorization", "").removeprefix("Bearer ")

    def send(self, method: str, path: str, *, auth: bool = True, **kwargs):
        """One request (``auth``: as the logged-in user, else as nobody); the ``httpx``
        response as it came, whatever its status."""
        if auth and not self._headers:
            self.login()
        extra = kwargs.pop("headers", None) or {}
        resp = self._http.request(method, path, headers={**(self._headers if auth else {}), **extra},
                                  **kwargs)
        if auth and resp.status_code == 401:  # the token expired: once more, logged in again
            self.login()
            resp = self._http.request(method, path, headers={**self._headers, **extra}, **kwargs)
        return resp

    def request(self, method: str, path: str, **kwargs):
        """``send``, then its JSON; an error status raises ``httpx.HTTPStatusError``."""
        resp = self.send(method, path, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    @staticmethod
    def run_path(dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", self.run_path(dag_id, run_id))

    def set_note_section(self, dag_id: str, run_id: str, section: str, text: str) -> str:
        """Set one section of the run's note (see the module's docstring); the whole note."""
        note = merge_note(self.run(dag_id, run_id).get("note") or "", section, text)
        self.request("PATCH", self.run_path(dag_id, run_id), params={"update_mask": "note"},
                     json={"note": note})
        return note
