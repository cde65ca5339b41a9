#!/usr/bin/env bash
# The network benchmark: green's servers against plain single-threaded epoll servers in C and
# against the other stackful-coroutine servers (Boost.Fiber, gevent), in one run. Builds bench/
# (Release, in build-release/), installs wrk if missing (as root), then:
#
#   echo ping-pong: echo_epoll (the limit), echo_green (stream_server + green::socket),
#     echo_patched (plain blocking read/write after monkey::patch_all()), echo_fiber (Boost.Fiber,
#     one fiber per connection on an epoll scheduling algorithm) and echo_gevent.py (gevent's
#     StreamServer; left out with a note when /usr/bin/python3 has no gevent), each loaded by
#     echo_client: 64 connections, 64-byte messages, a 1 s warm-up, then SECONDS measured;
#   HTTP hello world: http_epoll and http_green, each loaded by `wrk -t1 -c64`: a 1 s warm-up
#     run, then SECONDS measured.
#
#     bench/net_bench.sh [--quick] [--no-build] [REPETITIONS] [SECONDS]   # 3 and 5 by default
#
#   --quick     1 repetition of 1 s, a 0.2 s echo warm-up and no HTTP one, no waiting for a quiet
#               machine and no second attempts, no system call profile: well under 30 s, to
#               keep every server building and running (CI). Same table; the figures are rough.
#   --no-build  (or NET_BENCH_NO_BUILD=1) use build-release/ as it is: the caller built it.
#               NET_BENCH_BUILD_DIR=DIR: use DIR/ instead (scripts/bench.sh --quick: build/).
#   NET_BENCH_RESULTS=FILE  also append the measurements the tables use to FILE, one per line:
#               "@ echo_rtps IMPL N", "@ echo_cpu IMPL US", "@ http_rps IMPL N", "@ http_cpu IMPL US"
#               (round trips or requests per second; server CPU microseconds per round trip or
#               request), IMPL one of epoll-c, green, green-patched, boost-fiber, gevent.
#
# The servers run one at a time, each pinned to CPU 0; the load (echo_client, wrk) is pinned to
# CPU 1. Each repetition runs every server once, in turn, so slow drifts of the machine touch
# them alike. The server's CPU time in the measured window comes from /proc/PID/task/*/schedstat
# (on-CPU nanoseconds, user and kernel). It prints, per server, the median with min-max of:
# round trips (requests) per second, the server's CPU microseconds per round trip, its CPU use
# and the client's (in CPUs), and "other load": the CPU everything else on the machine used
# meanwhile (from /proc/stat); then the ratios against the epoll server (and green's against the
# other coroutine servers), taken per repetition (each pair ran in the same repetition, under
# about the same conditions): their median, with min-max.
#
# A run sharing its CPUs with other work measures that work too, so each measurement first waits
# (10 s at most) for other processes to take less than 0.25 CPU, and one during which they took
# more is made again (3 attempts at most, the quietest kept). Every attempt goes to stderr as it
# is made, as one line of key=value fields. (Not with --quick: it keeps every measurement.)
#
# Last, where perf can count tracepoints, the system calls each echo server makes per round trip
# over a fixed 200,000 round trips: a figure that other work on the machine cannot disturb.
# Nothing is asserted.
set -euo pipefail
source "$(dirname "$0")/../scripts/common.sh"

usage() { sed -n '/^#     bench\/net_bench.sh \[/,/IMPL one of/p' "$0" | sed 's/^# \{0,1\}//'; }

quick=0
build=1
[ "${NET_BENCH_NO_BUILD:-0}" != 0 ] && build=0
positional=()
for arg; do
    case $arg in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "net_bench: unknown option $arg" >&2; usage >&2; exit 2 ;;
        *) positional+=("$arg") ;;
    esac
done
if [ "$quick" = 1 ]; then
    repetitions=${positional[0]:-1}
    seconds=${positional[1]:-1}
    echo_warmup=0.2  # echo_client takes fractions of a second
    http_warmup=0    # wrk only takes whole seconds: none
    attempts=1       # and no waiting for a quiet machine, no system call profile
else
    repetitions=${positional[0]:-3}
    seconds=${positional[1]:-5}
    echo_warmup=1
    http_warmup=1
    attempts=3
fi
connections=64
message=64
server_cpu=0
client_cpu=1
quiet_load=0.25
profile_trips=200000
profile_syscalls="read write recvfrom sendto epoll_wait epoll_pwait2 accept4 fcntl epoll_ctl getsockopt"

bin="$GREEN_ROOT/${NET_BENCH_BUILD_DIR:-build-release}/bench"
if [ "$build" = 1 ]; then
    green_install "${GREEN_PACKAGES[@]}" "${GREEN_BENCH_PACKAGES[@]}"
    # GREEN_WERROR off: GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105651) inside
    # std::string's operator+, which lib/ uses.
    green_build build-release -DCMAKE_BUILD_TYPE=Release -DGREEN_WERROR=OFF -DGREEN_TESTS=OFF -DGREEN_DEMOS=OFF \
        -DGREEN_BENCH=ON >/dev/null
else
    green_install wrk
fi

# The servers, in the order each repetition runs them; their labels and result ids.
echo_servers=(echo_epoll echo_green echo_patched echo_fiber)
http_servers=(http_epoll http_green)
declare -A label=([echo_epoll]="epoll (C)" [echo_green]="green" [echo_patched]="patched" [echo_fiber]="boost.fiber"
    [echo_gevent]="gevent" [http_epoll]="epoll (C)" [http_green]="green")
declare -A impl=([echo_epoll]=epoll-c [echo_green]=green [echo_patched]=green-patched [echo_fiber]=boost-fiber
    [echo_gevent]=gevent [http_epoll]=epoll-c [http_green]=green)
python=/usr/bin/python3
skipped=
if [ -x "$python" ] && "$python" -c "import gevent" 2>/dev/null; then
    echo_servers+=(echo_gevent)
else
    skipped="note: no gevent row: $python cannot import gevent (Debian: apt-get install python3-gevent)"
fi
for s in echo_client "${echo_servers[@]}" "${http_servers[@]}"; do
    [ "$s" = echo_gevent ] && continue
    if [ ! -x "$bin/$s" ]; then
        echo "net_bench: $bin/$s is missing: build it with -DGREEN_BENCH=ON, or leave out --no-build" >&2
        exit 1
    fi
done

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME: runs it on $server_cpu; sets server_pid and port.
start_server() {
    : >"$work/port"
    if [ "$1" = echo_gevent ]; then
        taskset -c "$server_cpu" "$python" "$GREEN_ROOT/bench/echo_gevent.py" 0 >"$work/port" &
    else
        taskset -c "$server_cpu" "$bin/$1" 0 >"$work/port" &
    fi
    server_pid=$!
    for _ in $(seq 100); do
        port=$(awk '$1 == "port" { print $2 }' "$work/port")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    echo "net_bench: $1 did not start" >&2
    exit 1
}

stop_server() {
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# On-CPU nanoseconds of a process so far, all threads.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
# Busy nanoseconds of the whole machine so far (/proc/stat: user nice system irq softirq steal).
machine_busy_ns() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz }' /proc/stat
}

# CPU nanoseconds of the shell's waited-for children, from what `times` printed into FILE (its
# second line). `times` itself must run in the main shell: a $(...) subshell has no children.
children_cpu_ns() {
    awk 'NR == 2 {
        for (i = 1; i <= 2; ++i) { split($i, ms, "m"); sub("s", "", ms[2]); s += ms[1] * 60 + ms[2] }
        printf "%.0f\n", s * 1e9 }' "$1"
}

# Each measurement is one line: "NAME key=value ...".
results="$work/results"
noisy="$work/noisy"
touch "$results" "$noisy"

run_echo() {
    local name=$1 line
    start_server "$name"
    line=$(taskset -c "$client_cpu" "$bin/echo_client" -p "$port" -P "$server_pid" -c "$connections" -s "$message" \
        -w "$echo_warmup" -d "$seconds")
    stop_server
    echo "$line"
}

run_http() {
    local name=$1
    start_server "$name"
    local url="http://127.0.0.1:$port/"
    if [ "$http_warmup" != 0 ]; then taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${http_warmup}s" "$url" >/dev/null; fi
    local cpu0 busy0 wrk0 t0 out cpu1 busy1 wrk1 t1
    cpu0=$(cpu_ns "$server_pid")
    busy0=$(machine_busy_ns)
    times >"$work/times0"
    t0=$(date +%s%N)
    out=$(taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" "$url")
    t1=$(date +%s%N)
    times >"$work/times1"
    wrk0=$(children_cpu_ns "$work/times0")
    wrk1=$(children_cpu_ns "$work/times1")
    cpu1=$(cpu_ns "$server_pid")
    busy1=$(machine_busy_ns)
    stop_server
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
        echo "net_bench: wrk reported errors against $name:" >&2
        echo "$out" >&2
    fi
    awk -v cpu="$((cpu1 - cpu0))" -v wall="$((t1 - t0))" -v client="$((wrk1 - wrk0))" \
        -v busy="$((busy1 - busy0))" '
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        END {
            other = (busy - cpu - client) / wall
            printf "requests=%d rt_per_s=%.0f server_cpu_ns_per_rt=%.1f server_cpu_util=%.3f client_cpu_util=%.3f other_load=%.2f\n",
                n, rps, cpu / n, cpu / wall, client / wall, (other > 0 ? other : 0)
        }' <<<"$out"
}

# field LINE KEY: the value of KEY in a measurement line.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v key="$2" '$1 == key { print $2 }'; }

# Waits until other processes take at most $quiet_load CPUs over a second, for 10 s at most.
wait_for_quiet() {
    local busy0 busy1
    for _ in $(seq 10); do
        busy0=$(machine_busy_ns)
        sleep 1
        busy1=$(machine_busy_ns)
        awk -v busy="$((busy1 - busy0))" -v q="$quiet_load" 'BEGIN { exit !(busy / 1e9 <= q) }' && return 0
    done
    return 0
}

# measure KIND NAME REPETITION: one measurement (run_echo or run_http), made again while other processes
# took more than $quiet_load CPUs meanwhile, up to $attempts times in all; the quietest attempt
# is kept. Every attempt waits for a quiet machine first, and goes to stderr. A measurement that
# was not quiet even so is set aside: the tables leave it out and say how many were. With
# --quick: one attempt, no waiting, and it is kept whatever the load.
measure() {
    local kind=$1 name=$2 repetition=$3 best="" best_load="" line load
    if [ "$quick" = 1 ]; then
        line="$name rep=$repetition $("run_$kind" "$name")"
        echo "$line" >&2
        echo "$line" >>"$results"
        return
    fi
    for ((a = 1; a <= attempts; ++a)); do
        wait_for_quiet
        line="$name rep=$repetition $("run_$kind" "$name")"
        echo "$line" >&2
        load=$(field "$line" other_load)
        if [ -z "$best" ] || awk -v a="$load" -v b="$best_load" 'BEGIN { exit !(a < b) }'; then
            best=$line
            best_load=$load
        fi
        awk -v a="$load" -v q="$quiet_load" 'BEGIN { exit !(a <= q) }' && break
    done
    if awk -v a="$best_load" -v q="$quiet_load" 'BEGIN { exit !(a <= q) }'; then
        echo "$best" >>"$results"
    else
        echo "$best" >>"$noisy"
    fi
}

# summary NAME LABEL: one row of medians (min-max) for NAME's measurements.
summary() {
    awk -v name="$1" -v label="$2" -v reps="$repetitions" '
        function field(line, key,    i, kv) {
            for (i = 2; i <= NF; ++i) { split($i, kv, "="); if (kv[1] == key) return kv[2] }
            return ""
        }
        function stats(key, scale, fmt,    i, j, t, n, v) {
            n = 0
            for (i = 1; i <= count; ++i) { t = values[key, i]; if (t == "") return "-"; v[++n] = t * scale }
            if (n == 0) return "-"
            for (i = 2; i <= n; ++i) for (j = i; j > 1 && v[j - 1] > v[j]; --j) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return sprintf(fmt " (" fmt "-" fmt ")", (v[int((n + 1) / 2)] + v[int(n / 2) + 1]) / 2, v[1], v[n])
        }
        $1 == name {
            ++count
            split("rt_per_s server_cpu_ns_per_rt server_cpu_util client_cpu_util other_load", keys, " ")
            for (k in keys) values[keys[k], count] = field($0, keys[k])
        }
        END {
            if (count < reps) label = label " (" count + 0 ")"
            printf "  %-20s %-24s %-20s %-18s %-18s %s\n", label, stats("rt_per_s", 1, "%.0f"),
                stats("server_cpu_ns_per_rt", 0.001, "%.2f"), stats("server_cpu_util", 1, "%.2f"),
                stats("client_cpu_util", 1, "%.2f"), stats("other_load", 1, "%.2f")
        }' "$results"
}

# ratio NAME PEER LABEL: NAME against PEER, throughput and CPU per request. Each repetition
# measured the two within seconds of each other, under about the same conditions of the machine,
# so the ratio is taken per repetition; it prints the median of those ratios, with their min-max.
ratio() {
    awk -v name="$1" -v peer="$2" -v label="$3" '
        function sort(v, n,    i, j, t) {
            for (i = 2; i <= n; ++i) for (j = i; j > 1 && v[j - 1] > v[j]; --j) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        }
        function stats(v, n) {
            sort(v, n)
            return sprintf("%.2fx (%.2f-%.2f)", (v[int((n + 1) / 2)] + v[int(n / 2) + 1]) / 2, v[1], v[n])
        }
        $1 == name || $1 == peer {
            for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
            rate[$1, f["rep"]] = f["rt_per_s"]
            cpu[$1, f["rep"]] = f["server_cpu_ns_per_rt"]
            if (f["rep"] > reps) reps = f["rep"]
        }
        END {
            for (r = 1; r <= reps; ++r) {
                if (!((name, r) in rate) || !((peer, r) in rate)) continue
                throughput[++n] = rate[name, r] / rate[peer, r]
                cost[n] = cpu[name, r] / cpu[peer, r]
            }
            if (n == 0) { printf "  %-20s -\n", label; exit }
            printf "  %-20s throughput %-20s server CPU per request %s\n", label, stats(throughput, n), stats(cost, n)
        }' "$results"
}

# The system calls NAME makes per round trip, from perf's tracepoint counts over $profile_trips
# round trips (no warm-up, so the 64 connects and accepts are in it, 0.0003 per round trip).
syscalls_per_trip() {
    local name=$1 perf_pid
    start_server "$name"
    perf stat -x, -o "$work/perf" -p "$server_pid" -e raw_syscalls:sys_enter \
        -e "$(sed 's/[^ ]*/syscalls:sys_enter_&/g; s/ /,/g' <<<"$profile_syscalls")" &
    perf_pid=$!
    sleep 0.5  # perf attaches
    taskset -c "$client_cpu" "$bin/echo_client" -p "$port" -c "$connections" -s "$message" -n "$profile_trips" >/dev/null
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    stop_server
    awk -F, -v n="$profile_trips" -v label="$2" '
        $3 == "raw_syscalls:sys_enter" { total = $1 / n }
        $3 ~ /^syscalls:sys_enter_/ && $1 / n >= 0.005 { sub("syscalls:sys_enter_", "", $3); parts = parts sprintf(" %s %.2f,", $3, $1 / n) }
        END { sub(",$", "", parts); printf "  %-20s %.2f:%s\n", label, total, parts }' "$work/perf"
}

syscall_profile() {
    if ! perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
        echo
        echo "(no system call counts: perf cannot count tracepoints here)"
        return
    fi
    echo
    echo "echo: system calls per round trip over $profile_trips round trips (perf tracepoints)"
    for s in "${echo_servers[@]}"; do syscalls_per_trip "$s" "${label[$s]}"; done
}

# has NAME: whether NAME is among this run's servers.
has() { [[ " ${echo_servers[*]} ${http_servers[*]} " == *" $1 "* ]]; }

# With NET_BENCH_RESULTS set: the measurements the tables use, one value per line.
write_results() {
    awk -v echo_ids="$(for s in "${echo_servers[@]}"; do printf '%s=%s ' "$s" "${impl[$s]}"; done)" \
        -v http_ids="$(for s in "${http_servers[@]}"; do printf '%s=%s ' "$s" "${impl[$s]}"; done)" '
        BEGIN {
            n = split(echo_ids, a, " "); for (i = 1; i <= n; ++i) { split(a[i], kv, "="); id[kv[1]] = kv[2]; kind[kv[1]] = "echo" }
            n = split(http_ids, a, " "); for (i = 1; i <= n; ++i) { split(a[i], kv, "="); id[kv[1]] = kv[2]; kind[kv[1]] = "http" }
        }
        $1 in id {
            for (i = 2; i <= NF; ++i) { split($i, kv, "="); f[kv[1]] = kv[2] }
            rate = kind[$1] == "echo" ? "echo_rtps" : "http_rps"
            cost = kind[$1] == "echo" ? "echo_cpu" : "http_cpu"
            printf "@ %s %s %.0f\n", rate, id[$1], f["rt_per_s"]
            printf "@ %s %s %.3f\n", cost, id[$1], f["server_cpu_ns_per_rt"] / 1000
        }' "$results" >>"$NET_BENCH_RESULTS"
}

if [ "$quick" = 1 ]; then
    echo "green network benchmark, quick: $repetitions repetition of $seconds s, each measurement kept whatever" \
        "the machine's other load; servers on CPU $server_cpu, load on CPU $client_cpu"
else
    echo "green network benchmark: $repetitions repetitions of $seconds s each; servers on CPU $server_cpu," \
        "load on CPU $client_cpu"
fi
echo "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= repetitions; ++r)); do
    echo "repetition $r/$repetitions:" >&2
    for s in "${echo_servers[@]}"; do measure echo "$s" "$r"; done
    for s in "${http_servers[@]}"; do measure http "$s" "$r"; done
done

header() {
    printf "  %-20s %-24s %-20s %-18s %-18s %s\n" "server" "$1" "server CPU us/$2" "server CPU use" \
        "client CPU use" "other load (CPUs)"
}
echo
echo "echo ping-pong: $connections connections x $message B messages; median (min-max) of $repetitions" \
    "repetitions (fewer where shown in parentheses: the quiet ones)"
header "round trips/s" "rt"
for s in "${echo_servers[@]}"; do summary "$s" "${label[$s]}"; done
for s in "${echo_servers[@]}"; do
    [ "$s" != echo_epoll ] && ratio "$s" echo_epoll "${label[$s]} / epoll"
done
for s in echo_fiber echo_gevent; do
    has "$s" && ratio echo_green "$s" "green / ${label[$s]}"
done
echo
echo "HTTP hello world: wrk -t1 -c$connections; median (min-max) of $repetitions repetitions"
header "requests/s" "req"
for s in "${http_servers[@]}"; do summary "$s" "${label[$s]}"; done
ratio http_green http_epoll "green / epoll"
if [ "$quick" = 1 ]; then
    echo
    echo "(no system call profile with --quick)"
else
    syscall_profile
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$skipped" ]; then echo "$skipped"; fi
if [ -s "$noisy" ]; then
    echo "note: $(wc -l <"$noisy") of $(((${#echo_servers[@]} + ${#http_servers[@]}) * repetitions)) measurements are" \
        "left out above: other processes took more than $quiet_load CPUs during them, even at the best of $attempts" \
        "attempts (stderr has them all)"
fi
if [ -n "${NET_BENCH_RESULTS:-}" ]; then write_results; fi
