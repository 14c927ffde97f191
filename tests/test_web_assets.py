"""Data Docs render with no internet: every CDN asset GE's pages load is vendored and rewritten to.

The end-to-end test builds real Data Docs with Great Expectations (land a day, gate it), rewrites
every page and checks that nothing the browser fetches points outside and that every rewritten
path is a vendored file.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from flightline_airflow.web_assets import (
    CDN_ASSETS,
    LOGO_URL,
    STATIC_DIR,
    asset_path,
    rewrite_html,
    unknown_external_urls,
)

PREFIX = "/flightline/static/vendor"
DAY = date(2013, 1, 15)


def _local_refs(html: str) -> list[str]:
    """Vendored paths (relative to STATIC_DIR) that rewritten ``html`` points at."""
    p = re.escape(PREFIX)
    found = re.findall(rf"""(?:src|href)\s*=\s*"{p}/([^"]+)"|url\("{p}/([^"]+)"\)""", html)
    return [a or b for a, b in found]


def test_rewrite_html_swaps_cdn_urls_and_drops_their_integrity():
    popper = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
    html = (
        "<head>\n"
        f'<script src="{popper}" integrity="sha384-ApNbgh9B+Y1QKtv3Rn7W3mgPxhU9K/ScQsAP7hUibX39j7fakFPskvXusvfa0b4Q" crossorigin="anonymous"></script>\n'
        "<link rel='stylesheet' href='https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css' crossorigin />\n"
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<script src="https://example.com/other.js" integrity="sha384-keep" crossorigin="anonymous"></script>\n'
        "<style>.navbar-brand a { background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png') 0 0; }</style>\n"
        "</head><body>\n"
        f'<img class="NO-CACHE"\n  src="{LOGO_URL}?d=20250101T120000.000000Z&amp;dataContextId=1234"\n  alt="a > b integrity" />\n'
        '<a href="https://cdn.jsdelivr.net/npm/vega@5">vega</a> see https://code.jquery.com/jquery-3.7.1.min.js\n'
        "</body>"
    )
    out = rewrite_html(html, PREFIX + "/")
    assert f'<script src="{PREFIX}/popper.js@1.12.9/dist/umd/popper.min.js"></script>' in out
    assert f"<link rel='stylesheet' href=\"{PREFIX}/bootstrap@4.3.1/dist/css/bootstrap.min.css\" />" in out
    assert f'<script src="{PREFIX}/vega@5.33.1/vega.min.js"></script>' in out
    assert f'url("{PREFIX}/great_expectations@1.24.1/images/logo-long-dark.svg")' in out
    # the logo's query string goes with it; the other attributes stay, quirks included
    assert f'<img class="NO-CACHE"\n  src="{PREFIX}/great_expectations@1.24.1/images/logo-long.png"\n  alt="a > b integrity" />' in out
    # untouched: an unknown script (with its integrity), <a href> links, text
    assert '<script src="https://example.com/other.js" integrity="sha384-keep" crossorigin="anonymous">' in out
    assert '<a href="https://cdn.jsdelivr.net/npm/vega@5">vega</a> see https://code.jquery.com/jquery-3.7.1.min.js' in out
    assert out.count("integrity=") == 1 and out.count("crossorigin") == 1
    assert unknown_external_urls(out) == ["https://example.com/other.js"]
    assert rewrite_html(out, PREFIX) == out  # idempotent
    assert set(_local_refs(out)) <= set(CDN_ASSETS.values())


def test_unknown_external_urls_lists_fetched_resources_only():
    html = (
        '<link rel="stylesheet" href="//cdn.example.org/a.css">'
        '<img src="static/images/favicon.ico"><script src="http://example.com/x.js"></script>'
        '<script src="http://example.com/x.js"></script>'
        '<a href="https://docs.greatexpectations.io/">docs</a>'
        "<style>body { background: url(https://example.com/bg.png) }</style>"
    )
    assert unknown_external_urls(html) == [
        "//cdn.example.org/a.css",
        "http://example.com/x.js",
        "https://example.com/bg.png",
    ]


def test_every_mapped_asset_is_vendored_with_its_licence():
    assert asset_path(LOGO_URL + "?d=20250101T120000.000000Z&dataContextId=x") == CDN_ASSETS[LOGO_URL]
    assert asset_path("https://cdn.jsdelivr.net/npm/vega@5.1") is None
    for url, rel in CDN_ASSETS.items():
        assert asset_path(url) == rel
        assert (STATIC_DIR / rel).is_file(), f"{url} -> {rel} is not vendored"
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".map"]
    packages = [
        d.relative_to(STATIC_DIR).as_posix()
        for d in [*STATIC_DIR.glob("[!@]*@*"), *STATIC_DIR.glob("@*/*@*")]
    ]
    assert len(packages) == 12
    readme = (STATIC_DIR / "README.md").read_text()
    for package in packages:
        assert list((STATIC_DIR / package).glob("LICENSE*")), f"{package} has no licence file"
        assert package in readme, f"{package} is not listed in vendor/README.md"
    # what the vendored CSS loads by relative path (Font Awesome's webfonts) is there too
    for css in STATIC_DIR.rglob("*.css"):
        for ref in re.findall(r"""url\(\s*["']?([^"')]+)["']?\s*\)""", css.read_text()):
            if ref.startswith(("data:", "#")):
                continue
            assert not re.match(r"(?:https?:)?//", ref), f"{css.name} loads {ref}"
            assert (css.parent / ref.split("?")[0].split("#")[0]).is_file(), f"{css.name}: {ref}"


def test_real_data_docs_load_only_vendored_assets(settings):
    from tasks.flows.daily import raw_gate
    from tasks.landing import land_day

    raw_gate(land_day(DAY, settings), settings)
    site = Path(settings.zone("reports")) / "data_docs"
    pages = sorted(site.rglob("*.html"))
    assert site / "index.html" in pages and len(pages) >= 3  # index, suites, validations

    used: set[str] = set()
    for page in pages:
        html = page.read_text(encoding="utf-8")
        # GE still emits the URLs this module knows (a GE upgrade that changes them fails here)
        assert [u for u in unknown_external_urls(html) if asset_path(u) is None] == [], page
        out = rewrite_html(html, PREFIX)
        assert unknown_external_urls(out) == [], page.relative_to(site)
        assert "integrity=" not in out and "crossorigin=" not in out
        refs = _local_refs(out)
        assert any("bootstrap.min.css" in r for r in refs), page.relative_to(site)
        for rel in refs:
            assert (STATIC_DIR / rel).is_file(), f"{page.relative_to(site)} -> missing {rel}"
        used.update(refs)
    # the pages load every stylesheet and script GE's templates name (the dark logo lives in CSS)
    assert {p for p in used if p.endswith((".js", ".css"))} == {
        p for p in CDN_ASSETS.values() if p.endswith((".js", ".css"))
    }


def test_report_paths_are_confined_to_the_reports_zone(tmp_path):
    """Dot segments, hidden names, control characters and links out of the zone are refused
    (the live test requests them logged in and gets 404)."""
    from flightline_airflow.reports_app import _inside, _safe_parts

    for bad in ("", "../x.html", "a/./b", ".hidden/x", "a\\b", "a\x00b.html", "a\nb"):
        assert _safe_parts(bad) is None, bad
    assert _safe_parts("data_docs/dt=2013-03-15/index.html") == ["data_docs", "dt=2013-03-15", "index.html"]
    zone = tmp_path / "reports"
    (zone / "ok").mkdir(parents=True)
    (zone / "ok" / "page.html").write_text("x")
    (zone / "out.html").symlink_to("/etc/passwd")
    (zone / "in.html").symlink_to(zone / "ok" / "page.html")
    assert _inside(str(zone), str(zone / "ok" / "page.html"))
    assert _inside(str(zone), str(zone / "in.html"))
    assert not _inside(str(zone), str(zone / "out.html"))
    assert _inside("s3://bucket/reports", "s3://bucket/reports/x.html")
