#!/usr/bin/env bash
# Builds the demos and runs the tour. Installs missing Debian packages (as root).
set -euo pipefail
source "$(dirname "$0")/common.sh"

green_install "${GREEN_PACKAGES[@]}"
green_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREEN_TESTS=OFF -DGREEN_BENCH=OFF >/dev/null

run() {
    echo
    echo "== demos/$1: $2"
    "$GREEN_ROOT/build/demos/$1"
}

run greenlet_switch "two greenlets switching explicitly (1 3 2 4)"
run greenlet_eat_play "values passed on the first switch"
run gevent_eat_play "the hub switches on green::sleep: about 2 s, not 3"
run sync_vs_async "ten 0.5 s tasks, called in turn then spawned"
