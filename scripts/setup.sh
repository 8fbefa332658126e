#!/usr/bin/env bash
# Set-up behind `make demo` and `make test`: `setup.sh demo` or `setup.sh test`.
#   demo: system packages (Graphviz, Fashion-MNIST) when apt-get is usable, a virtual environment in .venv,
#         and the package with the extras the demo uses (viz, progress).
#   test: the same plus the development tools (dev, onnx, docs extras) and PyTorch CPU, the latter only from
#         a wheel already on this disk (never a download: PyPI's default torch is a multi-GB CUDA build).
# A stamp .venv/.setup-<mode> holds the sha256 of what decides the install (pyproject.toml, this script,
# the Python version, the torch wheel); when it matches, nothing is imported or installed, so a repeated
# `make` spends well under a second here. Environment: VENV (default .venv), PYTHON (default python3),
# TORCH_WHEEL_DIR (default /opt/wheels), SETUP_APT=no to never call apt-get.
set -eu
mode=${1:-}
case "$mode" in
  demo) extras="viz,progress" ;;
  test) extras="viz,progress,dev,onnx,docs" ;;
  *) echo "usage: scripts/setup.sh demo|test   (demo: what \`make demo\` needs; test: also the dev tools and PyTorch)" >&2; exit 2 ;;
esac
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PY=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
started=$(date +%s.%N)

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
can_apt() { [ "${SETUP_APT:-auto}" != no ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_seconds=0
apt_updated=0
apt_install() {
  local t0 log rc=0
  t0=$(date +%s.%N)
  if [ $apt_updated = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
  log=$(mktemp)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1 || { cat "$log"; rc=1; }
  rm -f "$log"
  apt_seconds=$(awk -v s="$apt_seconds" -v d="$(elapsed "$t0")" 'BEGIN { print s + d }')
  return $rc
}

# 1. System packages (cheap checks: no apt-get call when both are there).
want=""
command -v dot >/dev/null 2>&1 || want="$want graphviz"
[ -d /usr/share/datasets/fashion-mnist ] || want="$want dataset-fashion-mnist"
# The graphs name DejaVu Sans, so that Graphviz measures text with the font viewers show.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || want="$want fonts-dejavu-core"
if [ -n "$want" ]; then
  if can_apt; then
    echo "setup: installing system packages:$want"
    apt_install $want || echo "setup: apt-get could not install$want; continuing without them."
  else
    echo "setup: missing system packages:$want."
    echo "       Install them with: sudo apt-get install$want   (macOS: brew install graphviz; conda: conda install graphviz)"
    echo "       Without Graphviz, graph rendering tests are skipped; without the data package, demos look elsewhere for Fashion-MNIST."
  fi
fi

# 2. The virtual environment (Debian's python3 may lack the venv module). A venv whose Python no
#    longer runs (the system Python was replaced) is made anew.
if ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    if can_apt; then
      echo "setup: python3 has no venv module; installing python3-venv"
      apt_install python3-venv && "$PY" -m venv "$VENV"
    else
      echo "setup: python3 has no venv module and apt-get is not usable; falling back to virtualenv from PyPI"
      "$PY" -m pip install -q --user --break-system-packages virtualenv 2>/dev/null || "$PY" -m pip install -q --user virtualenv
      "$PY" -m virtualenv -q "$VENV"
    fi
  fi
fi
vpy="$VENV/bin/python"

# 3. Is the install up to date? The key covers everything that decides what step 4 installs.
wheel=""
if [ "$mode" = test ]; then
  tag=$("$vpy" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  wheel=$(ls "${TORCH_WHEEL_DIR:-/opt/wheels}"/torch-*+cpu-"$tag"-*.whl 2>/dev/null | head -n 1 || true)
fi
sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }  # coreutils, or macOS
key_of() { { cat pyproject.toml "$here/setup.sh"; "$vpy" -V 2>&1; echo "$1"; } | sha256 | cut -d' ' -f1; }
demo_key=$(key_of "demo")
key=$demo_key
[ "$mode" = test ] && key=$(key_of "test ${wheel##*/}")
stamp="$VENV/.setup-$mode"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  echo "setup ($mode): up to date ($(elapsed "$started") s)"
  exit 0
fi

# 4. The package (editable, so the checkout's code is what runs) with the mode's extras.
rm -f "$stamp"
echo "setup ($mode): installing tinygrad_cnn[$extras] into $VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$vpy" -m pip install -q -e ".[$extras]"
if [ -n "$wheel" ]; then
  echo "setup ($mode): installing PyTorch CPU from $wheel (for the reference tests and benchmarks)"
  log=$(mktemp)
  "$vpy" -m pip install -q "$wheel" >"$log" 2>&1 || { cat "$log"; echo "setup: could not install $wheel; torch comparisons will be skipped."; }
  rm -f "$log"
elif [ "$mode" = test ]; then
  echo "setup ($mode): no PyTorch CPU wheel in ${TORCH_WHEEL_DIR:-/opt/wheels}; the torch comparisons will be skipped"
fi
echo "$key" > "$stamp"
# Everything the demo needs is in the test install too.
[ "$mode" = test ] && echo "$demo_key" > "$VENV/.setup-demo"
total=$(elapsed "$started")
echo "setup ($mode): done in $total s ($(awk -v t="$total" -v a="$apt_seconds" 'BEGIN { printf "%.1f s apt-get, %.1f s the rest", a, t - a }'))"
