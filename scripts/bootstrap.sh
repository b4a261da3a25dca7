#!/usr/bin/env bash
# Set up everything stylesearch needs on a fresh machine; cheap to re-run (does nothing when
# the environment is current).
#
#   scripts/bootstrap.sh                 # .venv with stylesearch and its dev tools
#   scripts/bootstrap.sh --with-data     # + Debian's dataset-fashion-mnist (the demo catalog)
#   scripts/bootstrap.sh --with-browser  # + Debian's chromium (browser tests; never downloaded)
#
# Environment: PYTHON (default python3, must be >= 3.11), STYLESEARCH_VENV (default .venv),
# STYLESEARCH_TORCH (pip requirement(s) for torch/torchvision; default: the pair known to
# install offline on these machines for this CPU architecture).
set -euo pipefail
cd "$(dirname "$0")/.."

with_data=0
with_browser=0
for arg in "$@"; do
  case "$arg" in
    --with-data) with_data=1 ;;
    --with-browser) with_browser=1 ;;
    *) echo "bootstrap.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
      echo "bootstrap.sh: please install the Debian package(s) $* (as root: apt-get install -y $*)" >&2
      exit 1
    fi
  fi
  echo "bootstrap.sh: installing Debian package(s): $*" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

missing=()
if [ "$with_data" = 1 ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  missing+=(dataset-fashion-mnist)
fi
if [ "$with_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

PY=${PYTHON:-python3}
VENV=${STYLESEARCH_VENV:-.venv}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap.sh: stylesearch needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
case "$(uname -m)" in
  aarch64|arm64) default_torch="torch==2.9.1 torchvision==0.24.1" ;;
  *) default_torch="torch==2.14.1 torchvision==0.29.1" ;;
esac
torch_req=${STYLESEARCH_TORCH:-$default_torch}

stamp="$VENV/.stylesearch-stamp"
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)-$(echo "$torch_req" | sha256sum | cut -c1-8)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "bootstrap.sh: creating $VENV (torch, spaCy and friends; a few minutes the first time)" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install -q $torch_req -e ".[serve,dev,milvus]" 2>&1 | grep -v "is ignored" >&2 || true
"$VENV/bin/python" -c "import stylesearch, torch, torchvision, spacy, numba, pymilvus, milvus" || {
  echo "bootstrap.sh: the install failed (see pip's messages above)" >&2; exit 1; }
echo "$want" > "$stamp"
