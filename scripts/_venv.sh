# Sourced by scripts/test and scripts/demo: make (or reuse) the project's virtual environment,
# installed from uv.lock, so every machine (and CI, and the image) runs the same versions.
# VENV picks its location (default .venv); EXTRAS picks the optional dependency groups.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
# One uv version for the scripts and deploy/Dockerfile (tests/test_deploy.py keeps them equal).
UV_VERSION=0.13.9
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "stapi-gateway needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
    # Made by the chosen Python rather than by uv, so uv never downloads an interpreter of its own.
    "$PYTHON" -m venv "$VENV"
fi
# uv from $UV or the PATH; on a machine with only Python, from the package registry into a
# bootstrap venv beside $VENV (kept out of $VENV, where `uv sync` owns what is installed).
stapi_uv() {
    local found="${UV:-$(command -v uv || true)}" home="$VENV-uv"
    if [ -z "$found" ]; then
        if [ ! -x "$home/bin/uv" ] || [ "$("$home/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
            "$PYTHON" -m venv "$home"
            "$home/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
        fi
        found="$home/bin/uv"
    fi
    echo "$found"
}
# Quiet unless something fails; a stamp skips the install when neither uv.lock nor pyproject.toml
# has changed since the last one.
STAMP="$VENV/.stapi-gateway-${EXTRAS:-base}"
if [ ! -f "$STAMP" ] || [ "$ROOT/uv.lock" -nt "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    # --frozen: install exactly the lock, never re-resolve (.ci/run checks that the lock is current).
    # --inexact: scripts/test and scripts/demo share one venv with different extras, and syncing
    # one must not uninstall the other's; CI's fresh venv catches a dependency the lock lacks.
    UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON_DOWNLOADS=never \
        "$(stapi_uv)" sync --quiet --frozen --inexact --project "$ROOT" ${EXTRAS:+--extra "$EXTRAS"}
    touch "$STAMP"
fi
