#!/usr/bin/env bash
# Builds the demos and runs the tour. Installs missing Debian packages (as root).
set -euo pipefail
source "$(dirname "$0")/common.sh"

green_install "${GREEN_PACKAGES[@]}"
green_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREEN_TESTS=OFF -DGREEN_BENCH=OFF >/dev/null
SECONDS=0

# run <demo> <what it shows> [arguments...]
run() {
    local demo=$1 title=$2
    shift 2
    echo
    echo "== demos/$demo${*:+ $*}: $title"
    "$GREEN_ROOT/build/demos/$demo" "$@"
}

# Layer 1, greenlets: nothing runs unless switched to.
run greenlet_switch "two greenlets switching explicitly (1 3 2 4)"
run greenlet_eat_play "values passed on the first switch"
# Layer 2, the hub: waiting switches for you.
run gevent_eat_play "the hub switches on green::sleep: about 2 s, not 3"
run sync_vs_async "ten 0.5 s tasks, called in turn then spawned"
# Layer 3: plain blocking code made cooperative, then the two models side by side.
run monkey_patch "plain ::sleep after patch_all(): about 2 s, not 3"
run greenlet_vs_gevent "the same workload with greenlets, with the hub, with patch_all()"
run crawler "100 pages from a server that takes 1 s per page"
run echo_server "a stream_server echo, three clients at once" --demo

echo
echo "== the tour took ${SECONDS} s"
