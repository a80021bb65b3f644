#!/usr/bin/env bash
# Builds the one deployable executable, dist/headless-meeting-bot (PyInstaller 6,
# one file), from this checkout.
#
#   packaging/build.sh                 the sim driver only
#   packaging/build.sh --zoom          with the Zoom SDK (about 140 MB more)
#   packaging/build.sh --dist DIR      write the executable to DIR instead of dist/
#   packaging/build.sh --venv DIR      build venv (default build/packaging-venv)
#   packaging/build.sh --clean         drop PyInstaller's cache first
#
# The build venv gets the project installed from this checkout (not editable, so the
# cffi module is compiled into site-packages) with the "build" extra, plus "zoom"
# with --zoom; PyInstaller then collects from that venv. PYTHON picks the
# interpreter (default python3.11), which must have its shared libpython.
# Exit codes: 0 built, 3 the build tools could not be installed, other: build failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

zoom=0
dist="$root/dist"
venv="$root/build/packaging-venv"
clean=()
while [ $# -gt 0 ]; do
    case "$1" in
        --zoom) zoom=1 ;;
        --no-zoom) zoom=0 ;;
        --dist) dist="$(realpath -m "$2")"; shift ;;
        --venv) venv="$(realpath -m "$2")"; shift ;;
        --clean) clean=(--clean) ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

python="${PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [ -z "$python" ]; then
    echo "build.sh: no python3.11 found (set PYTHON)" >&2
    exit 3
fi

extras="build"
if [ "$zoom" = 1 ]; then extras="build,zoom"; fi

started=$(date +%s)
setup_tools() {
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv" && "$venv/bin/pip" install -q --upgrade pip
    fi
    # Dependencies are installed once per pyproject.toml and extras; the project
    # itself is reinstalled every time so the binary has this checkout's code.
    local stamp
    stamp="$venv/.deps-$(cat pyproject.toml setup.py | sha1sum | cut -c1-12)-${extras//,/_}"
    if [ ! -f "$stamp" ]; then
        "$venv/bin/pip" install -q ".[${extras}]" && touch "$stamp"
    else
        "$venv/bin/pip" install -q --no-deps --force-reinstall .
    fi
}
if ! setup_tools; then
    echo "build.sh: could not install the build tools into $venv" >&2
    exit 3
fi
# A build without --zoom leaves the SDK out even if this venv once had it.
if [ "$zoom" = 0 ]; then export HMB_BUILD_ZOOM=0; else export HMB_BUILD_ZOOM=1; fi

# PyInstaller imports the SDK binding while analysing it, and the SDK writes under
# $HOME and complains there: give it a throwaway one.
scratch_home="$(mktemp -d)"
trap 'rm -rf "$scratch_home"' EXIT
# `pyinstaller` (not `python -m`) so the checkout is not on sys.path: everything
# comes from the venv's site-packages, the stale *.egg-info of a checkout included.
HOME="$scratch_home" "$venv/bin/pyinstaller" --noconfirm --log-level WARN \
    "${clean[@]}" --distpath "$dist" --workpath "$root/build/pyinstaller-$zoom" \
    packaging/headless-meeting-bot.spec

binary="$dist/headless-meeting-bot"
"$binary" --version >/dev/null
size=$(stat -c %s "$binary")
echo "built $binary: $((size / 1024 / 1024)) MiB ($size bytes)," \
    "zoom=$zoom, in $(($(date +%s) - started)) s"
