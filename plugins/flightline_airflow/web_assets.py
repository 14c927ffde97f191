"""Serve Great Expectations Data Docs with no internet: vendored web assets and an HTML rewriter.

GE 1.24.1 Data Docs pages load Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega and GE's
navbar logo from public CDNs, so with no internet they render as unstyled text. The files live
under :data:`STATIC_DIR` (re-created by ``infra/vendor-web-assets.sh``; provenance and licences in
its README.md), and :func:`rewrite_html` points a page at them::

    html = rewrite_html(html, "/flightline/static/vendor")
    # <script src="/flightline/static/vendor/jquery@3.7.1/dist/jquery.min.js"></script>

Standard library only; nothing here imports Airflow.
"""

from __future__ import annotations

import re
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static" / "vendor"

# GE appends ?d=<UTC timestamp>[&dataContextId=<id>] to this one (its add_data_context_id_to_url
# filter); every key below also matches with a query string, which the rewrite drops.
LOGO_URL = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"

# Every external URL GE 1.24.1 puts in a Data Docs page (render/view/templates/*.j2 and the inline
# data_docs_default_styles.css), exactly as emitted, -> its file under STATIC_DIR.
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        "bootstrap@4.3.1/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        "bootstrap@4.3.1/dist/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    # GE asks for both builds of this 1.19.0 stylesheet (two rules); both get the minified one
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker@1.9.0/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker@1.9.0/dist/js/bootstrap-datepicker.min.js",
    # the unminified 880 kB file upstream; its minified build (150 kB) here
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free@6.6.0/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        "popper.js@1.12.9/dist/umd/popper.min.js",
    LOGO_URL: "great_expectations@1.24.1/images/logo-long.png",
    # background of the navbar brand under prefers-color-scheme: dark (inline CSS); not in GE's
    # wheel, so a copy of GE's SVG logo with white lettering stands in
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png":
        "great_expectations@1.24.1/images/logo-long-dark.svg",
}

# a known URL, optionally with a query string
_KNOWN = re.compile(
    "(?:"
    + "|".join(re.escape(url) for url in sorted(CDN_ASSETS, key=len, reverse=True))
    + r")(?:\?\S*)?"
)
# a <script>, <link> or <img> start tag (quoted attribute values may hold ">") and one attribute
_TAG = re.compile(r"""<(?:script|link|img)\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_ATTR = re.compile(
    r"""(?P<space>\s+)(?P<name>[^\s"'<>/=]+)"""
    r"""(?:(?P<eq>\s*=\s*)(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"'=<>`]+)))?"""
)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.IGNORECASE | re.DOTALL)
_CSS_URL = re.compile(r"""url\(\s*(?P<q>["']?)(?P<url>[^"')\s]+)(?P=q)\s*\)""", re.IGNORECASE)
_EXTERNAL = re.compile(r"(?:https?:)?//", re.IGNORECASE)


def _value(attr: re.Match[str]) -> str | None:
    return next((v for v in attr.group("dq", "sq", "bare") if v is not None), None)


def asset_path(url: str) -> str | None:
    """The vendored path (relative to STATIC_DIR) standing in for CDN ``url``, or None."""
    match = _KNOWN.fullmatch(url.strip())
    return CDN_ASSETS[match.group(0).split("?", 1)[0]] if match else None


def rewrite_html(html: str, static_prefix: str) -> str:
    """``html`` with every known CDN URL replaced by ``f"{static_prefix}/<vendored path>"``.

    Covers ``src``/``href`` of ``<script>``, ``<link>`` and ``<img>`` (whose ``integrity`` and
    ``crossorigin`` attributes go too: the hashes pin the CDN copy, and the same-origin copy needs
    no CORS) and ``url(...)`` in inline ``<style>`` blocks (the query string GE adds goes with the
    URL). Everything else is left as it was: ``<a href>`` links, text, URLs it does not know.
    """
    prefix = static_prefix.rstrip("/")

    def local(url: str) -> str | None:
        rel = asset_path(url)
        return None if rel is None else f"{prefix}/{rel}"

    def tag(m: re.Match[str]) -> str:
        changed = False

        def url_attr(a: re.Match[str]) -> str:
            nonlocal changed
            value = _value(a)
            new = None
            if value is not None and a.group("name").lower() in ("src", "href"):
                new = local(value)
            if new is None:
                return a.group(0)
            changed = True
            return f'{a.group("space")}{a.group("name")}{a.group("eq")}"{new}"'

        text = _ATTR.sub(url_attr, m.group(0))
        if not changed:
            return m.group(0)
        return _ATTR.sub(
            lambda a: "" if a.group("name").lower() in ("integrity", "crossorigin") else a.group(0),
            text,
        )

    def css(m: re.Match[str]) -> str:
        new = local(m.group("url"))
        return m.group(0) if new is None else f'url("{new}")'

    def style(m: re.Match[str]) -> str:
        return m.group(1) + _CSS_URL.sub(css, m.group(2)) + m.group(3)

    return _STYLE.sub(style, _TAG.sub(tag, html))


def unknown_external_urls(html: str) -> list[str]:
    """External (http, https, protocol-relative) URLs a browser would still fetch for ``html``.

    That is ``src``/``href`` of ``<script>``, ``<link>`` and ``<img>``, and ``url(...)`` in inline
    ``<style>`` blocks, in document order without repeats. Links a reader follows (``<a href>``,
    e.g. to GE's documentation) are not fetched and not listed.
    """
    found: list[str] = []
    for m in _TAG.finditer(html):
        for a in _ATTR.finditer(m.group(0)):
            value = _value(a)
            if value is not None and a.group("name").lower() in ("src", "href"):
                found.append(value.strip())
    for m in _STYLE.finditer(html):
        found.extend(u.group("url") for u in _CSS_URL.finditer(m.group(2)))
    return list(dict.fromkeys(u for u in found if _EXTERNAL.match(u)))
