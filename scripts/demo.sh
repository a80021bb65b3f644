#!/usr/bin/env bash
# Starts the appliance on the simulated driver with a demo meeting (Ctrl-C stops it).
source "$(dirname "$0")/_venv.sh" dev
export HMB_DRIVER=sim
export HMB_DATA_DIR="${HMB_DATA_DIR:-$root/data}"
exec .venv/bin/headless-meeting-bot serve --demo
