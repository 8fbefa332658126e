#!/usr/bin/env bash
# Set-up behind `make demo` and `make test`: system packages (Graphviz, Fashion-MNIST) when apt-get
# is usable, then a virtual environment in .venv with the package and all its extras.
set -eu
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
  log=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

# 1. System packages.
want=""
command -v dot >/dev/null 2>&1 || want="$want graphviz"
[ -d /usr/share/datasets/fashion-mnist ] || want="$want dataset-fashion-mnist"
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

# 2. The virtual environment (Debian's python3 may lack the venv module).
if [ ! -x "$VENV/bin/python" ]; then
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

# 3. The package and its extras (re-done only when pyproject.toml changes).
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing tinygrad_cnn with its extras into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q -e ".[all]"
  touch "$stamp"
fi

# 4. Optional: PyTorch CPU for the reference tests and benchmarks, only from a wheel already on
#    this disk (never a download: PyPI's default torch is a multi-GB CUDA build). Without it the
#    torch comparisons are skipped.
wheels=${TORCH_WHEEL_DIR:-/opt/wheels}
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  pyver=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  wheel=$(ls "$wheels"/torch-*+cpu-"$pyver"-*.whl 2>/dev/null | head -n 1)
  if [ -n "$wheel" ]; then
    echo "setup: installing PyTorch CPU from $wheel (for the reference tests and benchmarks)"
    log=$(mktemp)
    "$VENV/bin/python" -m pip install -q "$wheel" >"$log" 2>&1 ||
      { cat "$log"; echo "setup: could not install $wheel; torch comparisons will be skipped."; }
    rm -f "$log"
  fi
fi
