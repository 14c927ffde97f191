#!/usr/bin/env bash
# Build the task image (infra/Dockerfile) without a Docker daemon, with Buildah from the
# distribution (run as root), where no image registry can be reached: the official Airflow base
# is replaced by a stand-in built from Debian's packages (mmdebstrap; infra/airflow-standin.Containerfile),
# and Python packages come from this host's pip configuration (its files reach the build).
# With a registry, build the real thing instead: docker build -f infra/Dockerfile ... (README).
#   bash infra/build-images.sh [TAG]    (default localhost/flightline:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/flightline:dev}
# chroot isolation needs no OCI runtime or cgroup controllers (CI runners, VMs in containers)
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "build-images: needs $tool (apt-get install buildah mmdebstrap)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! buildah inspect --type image localhost/flightline-debian:bookworm >/dev/null 2>&1; then
  echo "build-images: Debian 12 root file system (mmdebstrap)"
  mmdebstrap --variant=apt --include=ca-certificates bookworm "$work/rootfs.tar" http://deb.debian.org/debian
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$mnt" -xf "$work/rootfs.tar"
  buildah umount "$ctr"
  buildah commit -q "$ctr" localhost/flightline-debian:bookworm
  buildah rm "$ctr" >/dev/null
fi
echo "build-images: the Airflow base stand-in"
buildah bud -q --network host -f infra/airflow-standin.Containerfile -t localhost/airflow-standin:3.11 infra
# This host's pip configuration reaches the build's pip: its config files (the user's as the
# image's user's), the CA bundle it trusts, and the local folders it names (find-links, file://
# indexes), read-only.
mounts=()
add() { [[ -e $1 ]] && mounts+=(--volume "$1:${2:-$1}:ro"); return 0; }
add /etc/pip.conf
add /etc/xdg/pip
add "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" /home/airflow/.config/pip/pip.conf
add /etc/ssl/certs/ca-certificates.crt
while read -r path; do add "$path"; done < <(
  { pip config list 2>/dev/null; env | grep '^PIP_'; } | grep -iE 'find.links|index.url' |
    grep -oE "(file://)?/[^ ']+" | while read -r p; do
      # a file:// index's pages link to files beside its simple/ folder: its parent goes too
      [[ $p == file://* ]] && p=$(dirname "${p#file://}")
      [[ -d $p ]] && echo "$p"
    done | sort -u)
echo "build-images: infra/Dockerfile -> $tag"
buildah bud --format docker --network host "${mounts[@]}" \
  --build-arg AIRFLOW_IMAGE=localhost/airflow-standin:3.11 \
  ${TORCH_INDEX:+--build-arg TORCH_INDEX="$TORCH_INDEX"} \
  -f infra/Dockerfile -t "$tag" .
echo "build-images: checking $tag: its tools, then one day's features built inside it"
ctr=$(buildah from "$tag")
buildah run --network host "$ctr" -- bash -c '
  set -e
  flightline --help >/dev/null
  horovodrun --check-build | grep -q "\[X\] Gloo"
  java -version 2>&1 | head -1
  python -c "import airflow, pyspark, torch, xgboost; print(\"image: airflow\", airflow.__version__, \"pyspark\", pyspark.__version__, \"torch\", torch.__version__, \"xgboost\", xgboost.__version__)"
  cd /tmp && export FLIGHTLINE_DATA_ROOT=/tmp/data
  flightline land --date 2013-03-01 --to 2013-03-02 >/dev/null
  flightline features-range --from 2013-03-02 --to 2013-03-02 >/dev/null
  test -d /tmp/data/features/dt=2013-03-02 && echo "image: features of 2013-03-02 built and published inside it"'
buildah rm "$ctr" >/dev/null
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag"
