#!/usr/bin/env bash
# Re-create plugins/flightline_airflow/static/vendor/ from npm: the CSS, JavaScript, fonts and
# images that Great Expectations' Data Docs pages load from public CDNs, pinned to the versions
# the pages ask for, so the pages render with no internet (see plugins/flightline_airflow/web_assets.py).
#
#   bash infra/vendor-web-assets.sh            # rebuild the folder in place
#   PYTHON=path/to/python bash infra/vendor-web-assets.sh
#
# Needs: npm (for `npm pack`; the registry it is configured for), tar, openssl, and a Python with
# great-expectations==1.24.1 installed (default: .venv/bin/python) for GE's own navbar logo.
# Only the files the pages load are kept (minified builds, no source maps), each package's
# licence beside them. Files are copied byte for byte from the tarballs, except: the dark-mode
# logo (derived from GE's SVG logo, see below); popper.js's LICENSE (its tarball has none: the MIT
# notice is taken from the header of its own dist/umd/popper.js); vega's LICENSE (taken from the
# vega@5.22.1 tarball, the same BSD-3-Clause terms; 5.33.1's ships none).
# vega, vega-lite and vega-embed are pinned to the newest 5.x / 5.x / 6.x (what the pages'
# unversioned jsdelivr URLs resolved to when this was written); bump them here, then run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/plugins/flightline_airflow/static/vendor"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
GE_VERSION=1.24.1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
NEW="$WORK/vendor"
mkdir -p "$NEW"

# unpack <npm spec> <directory name under vendor/>; leaves the package in $WORK/<dir>/package
unpack() {
    local spec="$1" dir="$2" tgz
    mkdir -p "$WORK/$dir"
    tgz="$(cd "$WORK/$dir" && npm pack --silent "$spec" 2>/dev/null | tail -n 1)"
    [ -f "$WORK/$dir/$tgz" ] || { echo "npm pack $spec failed" >&2; exit 1; }
    tar xzf "$WORK/$dir/$tgz" -C "$WORK/$dir"
}

# take <directory name under vendor/> <path inside the package>...: copy, keeping the path
take() {
    local dir="$1"
    shift
    for rel in "$@"; do
        [ -f "$WORK/$dir/package/$rel" ] || { echo "$dir: no $rel in the tarball" >&2; exit 1; }
        mkdir -p "$NEW/$dir/$(dirname "$rel")"
        cp "$WORK/$dir/package/$rel" "$NEW/$dir/$rel"
    done
}

# take_flat <directory name under vendor/> <path inside the package>...: copy to the package's
# top level (for files under build/, a name the repository's .gitignore keeps out of git)
take_flat() {
    local dir="$1"
    shift
    for rel in "$@"; do
        [ -f "$WORK/$dir/package/$rel" ] || { echo "$dir: no $rel in the tarball" >&2; exit 1; }
        mkdir -p "$NEW/$dir"
        cp "$WORK/$dir/package/$rel" "$NEW/$dir/$(basename "$rel")"
    done
}

# sri <file> <expected sha384-...>: the hash the GE templates pin with integrity="..."
sri() {
    local got
    got="sha384-$(openssl dgst -sha384 -binary "$1" | base64 -w0)"
    [ "$got" = "$2" ] || { echo "$1: $got, expected $2 (GE's integrity attribute)" >&2; exit 1; }
}

unpack bootstrap@4.3.1 bootstrap@4.3.1
take bootstrap@4.3.1 LICENSE dist/css/bootstrap.min.css dist/js/bootstrap.min.js
sri "$NEW/bootstrap@4.3.1/dist/js/bootstrap.min.js" \
    sha384-JjSmVgyd0p3pXB1rRibZUAYoIIy6OrQ6VrjIEaFf/nJGzIxFDsf4x0xIM+B07jRM

unpack bootstrap-table@1.19.1 bootstrap-table@1.19.1
take bootstrap-table@1.19.1 LICENSE dist/bootstrap-table.min.css dist/bootstrap-table.min.js \
    dist/extensions/filter-control/bootstrap-table-filter-control.min.js

# GE asks for this one's .css and .min.css (both 1.19.0): both URLs get the .min.css
unpack bootstrap-table@1.19.0 bootstrap-table@1.19.0
take bootstrap-table@1.19.0 LICENSE \
    dist/extensions/filter-control/bootstrap-table-filter-control.min.css

unpack bootstrap-datepicker@1.9.0 bootstrap-datepicker@1.9.0
take bootstrap-datepicker@1.9.0 LICENSE dist/css/bootstrap-datepicker.min.css \
    dist/js/bootstrap-datepicker.min.js

# GE asks for the unminified bootstrap-prefers-dark.css (880 kB); the minified build of the same
# file (150 kB) is served in its place
unpack @forevolve/bootstrap-dark@1.1.0 @forevolve/bootstrap-dark@1.1.0
take @forevolve/bootstrap-dark@1.1.0 LICENSE dist/css/bootstrap-prefers-dark.min.css

unpack vega@5.33.1 vega@5.33.1
take_flat vega@5.33.1 build/vega.min.js
# vega 5.33.1's tarball carries no LICENSE (package.json: BSD-3-Clause); 5.22.1's does, same terms
unpack vega@5.22.1 vega-license
take vega-license LICENSE
mv "$NEW/vega-license/LICENSE" "$NEW/vega@5.33.1/LICENSE"
rmdir "$NEW/vega-license"
unpack vega-lite@5.23.0 vega-lite@5.23.0
take vega-lite@5.23.0 LICENSE
take_flat vega-lite@5.23.0 build/vega-lite.min.js
unpack vega-embed@6.29.0 vega-embed@6.29.0
take vega-embed@6.29.0 LICENSE
take_flat vega-embed@6.29.0 build/vega-embed.min.js

# all.min.css loads ../webfonts/fa-*.woff2 (and .ttf as the fallback): keep both
unpack @fortawesome/fontawesome-free@6.6.0 @fortawesome/fontawesome-free@6.6.0
fa="$WORK/@fortawesome/fontawesome-free@6.6.0/package"
take @fortawesome/fontawesome-free@6.6.0 LICENSE.txt css/all.min.css \
    $(cd "$fa" && grep -oE 'url\(\.\./webfonts/[^)]+\)' css/all.min.css \
        | sed -E 's#^url\(\.\./(.*)\)$#\1#' | sort -u)

unpack jquery@3.7.1 jquery@3.7.1
take jquery@3.7.1 LICENSE.txt dist/jquery.min.js

unpack popper.js@1.12.9 popper.js@1.12.9
take popper.js@1.12.9 dist/umd/popper.min.js
sri "$NEW/popper.js@1.12.9/dist/umd/popper.min.js" \
    sha384-ApNbgh9B+Y1QKtv3Rn7W3mgPxhU9K/ScQsAP7hUibX39j7fakFPskvXusvfa0b4Q
# the licence block at the top of dist/umd/popper.js, from "Copyright" to the end of the comment
sed -n '/^ \* Copyright/,/^ \*\//p' "$WORK/popper.js@1.12.9/package/dist/umd/popper.js" \
    | sed -E '$d; s/^ \* ?//; s/^ \*$//' > "$NEW/popper.js@1.12.9/LICENSE"
grep -q "MIT\|Permission is hereby granted" "$NEW/popper.js@1.12.9/LICENSE" \
    || { echo "popper.js: no licence notice found" >&2; exit 1; }

# GE's navbar logo (S3 in the templates) and its licence, from the installed wheel; GE's dark-mode
# CSS swaps in full_logo_dark.png, which the wheel lacks: a copy of GE's SVG logo with white
# lettering stands in for it
ge_dir="$("$PYTHON" - "$GE_VERSION" <<'EOF'
import importlib.metadata as md
import importlib.util
import sys

version = md.version("great_expectations")
if version != sys.argv[1]:
    sys.exit(f"great_expectations {version} is installed, {sys.argv[1]} is pinned")
print(importlib.util.find_spec("great_expectations").submodule_search_locations[0])
EOF
)"
ge_lic="$("$PYTHON" -c '
import importlib.metadata as md
d = md.distribution("great_expectations")
print(next(str(d.locate_file(f)) for f in d.files if f.name == "LICENSE" and ".dist-info" in str(f)))
')"
ge="great_expectations@$GE_VERSION"
mkdir -p "$NEW/$ge/images"
cp "$ge_lic" "$NEW/$ge/LICENSE"
cp "$ge_dir/render/view/static/images/logo-long.png" "$NEW/$ge/images/logo-long.png"
# (white lettering; squeezed to the PNG's width, since a page's own fonts do not reach an SVG
# loaded as an image and the fallback font is wider than GE's HK Grotesk)
sed -E -e 's/fill="#000000" font-family="HKGrotesk-Light, HK Grotesk"/fill="#FFFFFF" font-family="HKGrotesk-Light, HK Grotesk, sans-serif"/' \
    -e 's/<tspan x="0" y="32">great_expectations/<tspan x="0" y="32" textLength="280" lengthAdjust="spacingAndGlyphs">great_expectations/' \
    "$ge_dir/render/view/static/images/logo-long-vector.svg" > "$NEW/$ge/images/logo-long-dark.svg"
[ "$(grep -c 'fill="#FFFFFF" font-family\|textLength="280"' "$NEW/$ge/images/logo-long-dark.svg")" = 2 ] \
    || { echo "logo-long-vector.svg changed: dark logo not derived" >&2; exit 1; }

# swap in the new tree, keeping the hand-written README.md
if [ -f "$DEST/README.md" ]; then cp "$DEST/README.md" "$NEW/README.md"; fi
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -R "$NEW" "$DEST"
find "$DEST" -type f -exec chmod 0644 {} +
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    ignored="$(cd "$ROOT" && find "${DEST#"$ROOT"/}" -type f | git check-ignore --no-index --stdin || true)"
    [ -z "$ignored" ] || { echo "git ignores vendored files (rename them):" >&2; echo "$ignored" >&2; exit 1; }
fi
echo "vendored into ${DEST#"$ROOT"/}: $(find "$DEST" -type f | wc -l) files, $(du -sh "$DEST" | cut -f1)"
