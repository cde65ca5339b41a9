#!/usr/bin/env bash
# Measures green against its peers in one run and writes the performance page.
#
#     ./scripts/bench.sh [REPETITIONS]     # 3 by default: about 16 minutes on 2 cores
#     ./scripts/bench.sh --quick           # every benchmark once, small: under a minute once built
#
# Installs what it needs (Debian packages, as root: Boost.Fiber, wrk, perf, Python's greenlet and
# gevent), builds bench/ and demos/ in Release (build-release/), then runs every benchmark
# REPETITIONS times, in turn, so that slow drifts of this shared VM touch every peer alike:
#   switch_bench   greenlet switch against raw boost::context fiber, ucontext, std::thread
#   hub_bench      sleep(), spawn + join, timers, event hand-off against Boost.Fiber, std::thread
#   rss_bench      resident bytes per parked greenlet (each stack policy) against Boost.Fiber
#   peers.py       Python greenlet and gevent on the same definitions (/usr/bin/python3)
#   crawler        demos/crawler (libcurl under patch_all) against bench/crawler_gevent.py
#   net_bench.sh   echo and HTTP servers against C epoll, Boost.Fiber and gevent (its own
#                  REPETITIONS rounds, run once at the end)
# Each prints "@ <measure> <impl> <value>" lines; all of them, with the machine's description,
# go to build-release/bench-results.txt, and bench_report turns that into the table printed at
# the end, the results section of docs/performance.md and docs/performance.svg.
#
# --quick keeps every benchmark building and running (CI runs it; nothing about speed is
# asserted): one repetition at a tenth of the work or less, on the tree ./scripts/test.sh builds
# (build/, RelWithDebInfo). It writes build/bench-results.txt and build/performance.svg and leaves
# docs/ alone: its figures are rough.
set -euo pipefail
source "$(dirname "$0")/common.sh"

quick=0
repetitions=3
for arg; do
    case $arg in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        '' | *[!0-9]*) echo "bench.sh: unknown argument '$arg' (expected --quick or a repetition count)" >&2; exit 2 ;;
        *) repetitions=$arg ;;
    esac
done
[ "$repetitions" -ge 1 ] || { echo "bench.sh: at least one repetition" >&2; exit 2; }

green_install "${GREEN_PACKAGES[@]}" "${GREEN_BENCH_PACKAGES[@]}" python3-greenlet python3-gevent linux-perf

if [ "$quick" = 1 ]; then
    repetitions=1
    tree=build
    scale=0.1 rss_count=10000 peers_args=(--quick) crawler_args=(--delay 0.2) net_args=(--quick)
    echo "== building build/ (RelWithDebInfo, as ./scripts/test.sh does)"
    green_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREEN_TESTS=ON -DGREEN_DEMOS=ON -DGREEN_BENCH=ON >/dev/null
else
    tree=build-release
    scale=1 rss_count=100000 peers_args=() crawler_args=() net_args=("$repetitions")
    echo "== building build-release/ (Release)"
    # GREEN_WERROR off: GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105651) inside
    # std::string's operator+, which lib/ uses.
    green_build build-release -DCMAKE_BUILD_TYPE=Release -DGREEN_WERROR=OFF -DGREEN_TESTS=OFF -DGREEN_DEMOS=ON \
        -DGREEN_BENCH=ON >/dev/null
fi
out="$GREEN_ROOT/$tree"
bin="$out/bench"
results="$out/bench-results.txt"
python=/usr/bin/python3

# ---- the machine, for the page ----------------------------------------------------------------
flags=$(sed -n 's/^CMAKE_CXX_FLAGS_\(RELEASE\|RELWITHDEBINFO\):STRING=//p' "$out/CMakeCache.txt" | head -1)
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$out/CMakeCache.txt")
{
    echo "= cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "= cores: $(nproc)"
    echo "= memory: $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "= kernel: $(uname -sr)"
    echo "= os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "= compiler: $(g++ --version | head -1)"
    echo "= flags: $build_type: $flags -std=c++20"
    echo "= boost: $(dpkg-query -W -f='${Version}' libboost-context-dev 2>/dev/null)"
    if "$python" -c "import gevent" 2>/dev/null; then
        echo "= python: $("$python" -c 'import sys, greenlet, gevent; print(sys.version.split()[0], "greenlet", greenlet.__version__, "gevent", gevent.__version__)')"
    else
        echo "= skipped: Python greenlet and gevent ($python cannot import gevent)"
    fi
    echo "= command: ./scripts/bench.sh$([ "$quick" = 1 ] && echo " --quick" || echo " $repetitions")"
    echo "= repetitions: $repetitions"
    echo "= date: $(date -u +%Y-%m-%d)"
} >"$results"

# ---- the runs ---------------------------------------------------------------------------------
start=$SECONDS
step=0
steps=$((repetitions * 5 + 1))
progress() {
    step=$((step + 1))
    printf '[%2d/%d %4ds] %s\n' "$step" "$steps" $((SECONDS - start)) "$*" >&2
}
# run <what> <command...>: the command's human lines to the terminal, indented; all to results.
run() {
    progress "$1"
    shift
    "$@" | tee -a "$results" | { grep -v '^@' || true; } | sed 's/^/    /'
}
crawler() {
    # "...with green::socket: 100/100 pages. Cost time: 1.03 s" -> "@ crawler_s green-socket 1.03"
    "$out/demos/crawler" "${crawler_args[@]}" | awk '
        { print }
        /Cost time/ && /green::socket/ { printf "@ crawler_s green-socket %s\n", $(NF - 1) }
        /Cost time/ && /libcurl/ { printf "@ crawler_s green-curl %s\n", $(NF - 1) }'
    if "$python" -c "import gevent" 2>/dev/null; then
        "$python" "$GREEN_ROOT/bench/crawler_gevent.py" "${crawler_args[@]}"
    fi
}

for r in $(seq 1 "$repetitions"); do
    run "repetition $r/$repetitions: switch_bench" "$bin/switch_bench" "$scale"
    run "repetition $r/$repetitions: hub_bench" "$bin/hub_bench" "$scale"
    run "repetition $r/$repetitions: rss_bench" "$bin/rss_bench" "$rss_count"
    run "repetition $r/$repetitions: peers.py (Python greenlet, gevent)" "$python" "$GREEN_ROOT/bench/peers.py" "${peers_args[@]}"
    run "repetition $r/$repetitions: crawler (green, gevent)" crawler
done
progress "net_bench.sh: echo and HTTP servers, $repetitions round(s)"
NET_BENCH_BUILD_DIR=$tree NET_BENCH_RESULTS="$results" "$GREEN_ROOT/bench/net_bench.sh" --no-build "${net_args[@]}" |
    sed 's/^/    /'

echo
echo "== report ($((SECONDS - start)) s of measuring; every value: $results)"
if [ "$quick" = 1 ]; then
    "$bin/bench_report" "$results" --svg "$out/performance.svg"
else
    "$bin/bench_report" "$results" --markdown "$GREEN_ROOT/docs/performance.md" --svg "$GREEN_ROOT/docs/performance.svg"
    echo "(docs/performance.md and docs/performance.svg rewritten from this run)"
fi
