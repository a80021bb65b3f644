#!/usr/bin/env bash
# Runs the test suite; arguments go to pytest. HMB_TEST_EXTRAS adds extras (zoom).
extras="dev"
if [ -n "${HMB_TEST_EXTRAS:-}" ]; then extras="dev,${HMB_TEST_EXTRAS}"; fi
source "$(dirname "$0")/_venv.sh" "$extras"
exec .venv/bin/pytest "$@"
