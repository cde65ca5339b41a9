#!/usr/bin/python3
# Python's greenlet and gevent, measured on the same definitions as green's C++ benchmarks
# (switch_bench, hub_bench), so the benchmark command can set them side by side.
#
#     /usr/bin/python3 bench/peers.py [--quick]      # about a minute; --quick: a few seconds
#
# Stdout: one line "@ <measure> <impl> <value>" per measurement (value a plain decimal in the
# measure's unit), between human-readable lines that never start with "@". Progress on stderr.
#
#   switch_rt        python-greenlet  ns per round trip A -> B -> A, greenlet.switch()
#   sleep_rt         gevent  ns per round: two greenlets each calling gevent.sleep(0) n times
#                            (each side yields once per round), wall time / n
#   spawn_join_one   gevent  ns per task: gevent.spawn(f).join() of an empty f, one at a time
#   spawn_join_batch gevent  ns per task: 100,000 spawned (empty f), then gevent.joinall
#   event_handoff    gevent  ns per round trip: ping-pong through two gevent.event.Events
#                            (A: ping.set, pong.wait, pong.clear; B: ping.wait, ping.clear, pong.set)
#   timers           gevent  CPU ns per timer (time.process_time): 100,000 gevent.spawn_later(d,
#                            empty f), d random 0-100 ms (seed 42), then joinall
#   sleeping_tasks   gevent  the same delays, each slept on by a greenlet of its own:
#                            gevent.spawn(gevent.sleep, d), then joinall (CPU ns per task)
#   rss_parked       gevent, python-greenlet  resident bytes per parked greenlet, 100,000 alive:
#                            gevent greenlets waiting on one shared Event; raw greenlets switched
#                            into once and parked in a small function frame. Each run is a fresh
#                            process (--rss IMPL N, used internally), so earlier measures' memory
#                            does not blur it.
#
# Each measure: a warm-up (a tenth of the work), then the median of 3 runs. --quick: a tenth of
# the work or less, one run. The garbage collector stays on, as in any gevent program; each run
# starts with gc.collect() so it does not pay for the garbage of the run before it.
# (With CPython 3.11 and greenlet 2.0, each greenlet that runs Python code maps its own 16 KiB
# frame data stack: an mmap and an munmap per spawned greenlet, part of what these figures hold.)
import gc
import os
import random
import statistics
import subprocess
import sys
import time

QUICK = "--quick" in sys.argv[1:]
RUNS = 1 if QUICK else 3


def emit(measure, impl, samples, unit="ns"):
    value = statistics.median(samples)
    label = f"{measure} [{impl}]"
    spread = f"(min {min(samples):.2f}, max {max(samples):.2f})" if len(samples) > 1 else ""
    print(f"  {label:<36} {value:12.2f} {unit:<5} {spread}".rstrip())
    print(f"@ {measure} {impl} {value:.2f}", flush=True)


def measure(measure_name, impl, n, body, clock=time.perf_counter_ns):
    """body(n) performs n operations; returns the samples in ns per operation."""
    print(f"peers.py: {measure_name} [{impl}], n={n}", file=sys.stderr, flush=True)
    body(max(n // 10, 1))  # warm-up: the hub, free lists, allocator arenas
    samples = []
    for _ in range(RUNS):
        gc.collect()
        t0 = clock()
        body(n)
        samples.append((clock() - t0) / n)
    emit(measure_name, impl, samples)


def scaled(n):
    return max(n // 10, 1) if QUICK else n


# ---- python-greenlet --------------------------------------------------------------------------

def greenlet_measures():
    import greenlet

    main = greenlet.getcurrent()

    def partner_body():
        while True:
            main.switch()

    partner = greenlet.greenlet(partner_body)

    def switches(n):
        switch = partner.switch
        for _ in range(n):
            switch()

    measure("switch_rt", "python-greenlet", scaled(1_000_000), switches)


# ---- gevent -----------------------------------------------------------------------------------

def nothing():
    pass


def gevent_measures():
    import gevent
    from gevent.event import Event

    # gevent.sleep(0) queues a callback and switches to the hub, which runs it in the same loop
    # iteration (no epoll_wait per round): like green::sleep(), a trip through the hub.
    def sleep_turns(n):
        def turn():
            for _ in range(n):
                gevent.sleep(0)
        gevent.joinall([gevent.spawn(turn), gevent.spawn(turn)])

    def spawn_join_one(n):
        for _ in range(n):
            gevent.spawn(nothing).join()

    def spawn_join_batch(n):
        gevent.joinall([gevent.spawn(nothing) for _ in range(n)])

    def event_handoff(n):
        ping, pong = Event(), Event()

        def a():
            for _ in range(n):
                ping.set()
                pong.wait()
                pong.clear()

        def b():
            for _ in range(n):
                ping.wait()
                ping.clear()
                pong.set()
        gevent.joinall([gevent.spawn(a), gevent.spawn(b)])

    timer_n = 10_000 if QUICK else 100_000
    rng = random.Random(42)
    delays = [rng.randint(0, 100_000) / 1e6 for _ in range(timer_n)]

    def timers(n):
        gevent.joinall([gevent.spawn_later(d, nothing) for d in delays[:n]])

    def sleepers(n):
        gevent.joinall([gevent.spawn(gevent.sleep, d) for d in delays[:n]])

    measure("sleep_rt", "gevent", scaled(200_000), sleep_turns)
    measure("spawn_join_one", "gevent", scaled(100_000), spawn_join_one)
    measure("spawn_join_batch", "gevent", scaled(100_000), spawn_join_batch)
    measure("event_handoff", "gevent", scaled(100_000), event_handoff)
    # CPU time: the time spent waiting for the timers to expire is not counted.
    measure("timers", "gevent", timer_n, timers, clock=time.process_time_ns)
    measure("sleeping_tasks", "gevent", timer_n, sleepers, clock=time.process_time_ns)


# ---- resident memory per parked greenlet (run in a fresh process) ----------------------------

def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_child(impl, n):
    """Prints the RSS growth per greenlet with n parked; runs as `peers.py --rss IMPL N`."""
    if impl == "gevent":
        import gevent
        from gevent.event import Event

        release = Event()
        parked = 0

        def park():
            nonlocal parked
            parked += 1
            release.wait()

        gevent.sleep(0)  # create the hub and its loop before the first reading
        gc.collect()
        before = rss_bytes()
        tasks = [gevent.spawn(park) for _ in range(n)]
        while parked < n:  # the hub may start them over several loop iterations
            gevent.sleep(0)
        after = rss_bytes()
        release.set()
        gevent.joinall(tasks)
    else:
        import greenlet

        main = greenlet.getcurrent()

        def park():
            main.switch()

        gc.collect()
        before = rss_bytes()
        tasks = []
        for _ in range(n):
            g = greenlet.greenlet(park)
            g.switch()
            tasks.append(g)
        after = rss_bytes()
    print((after - before) / n, flush=True)
    # Skip tearing down n greenlets (for raw ones, a GreenletExit thrown into each): it measures
    # nothing and takes seconds.
    os._exit(0)


def rss_measure(impl, n):
    print(f"peers.py: rss_parked [{impl}], n={n}, {RUNS} fresh processes", file=sys.stderr, flush=True)
    samples = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss", impl, str(n)],
                             check=True, capture_output=True, text=True).stdout
        samples.append(float(out))
    emit("rss_parked", impl, samples, unit="B")


# ---- main -------------------------------------------------------------------------------------

def available(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main():
    if sys.argv[1:2] == ["--rss"]:
        rss_child(sys.argv[2], int(sys.argv[3]))
    if sys.argv[1:] not in ([], ["--quick"]):
        sys.exit("usage: peers.py [--quick]")

    start = time.perf_counter()
    have_greenlet = available("greenlet")
    have_gevent = have_greenlet and available("gevent")
    rss_n = 10_000 if QUICK else 100_000
    print(f"Python {sys.version.split()[0]} peers: median of {RUNS} run(s) after a warm-up"
          + (f"; --quick: a tenth of the work, timers and RSS with {rss_n} greenlets" if QUICK else ""))
    if have_greenlet:
        import greenlet
        print(f"greenlet {greenlet.__version__}")
        greenlet_measures()
        rss_measure("python-greenlet", rss_n)
    else:
        print("peers.py: skipped, python3-greenlet not installed")
    if have_gevent:
        import gevent
        print(f"gevent {gevent.__version__}, loop {gevent.config.loop.__module__}")
        gevent_measures()
        rss_measure("gevent", rss_n)
    else:
        print("peers.py: skipped, python3-gevent not installed")
    print(f"peers.py: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
