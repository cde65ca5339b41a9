// The gevent oracle cases for gevent.queue, gevent.pool and gevent.lock
// (tests/oracle/gevent/case09, case10, case14), ported to C++: each test prints the same trace
// as the Python program and compares it with the recorded output.
//
// Python's exceptions map to green's: queue.Empty/Full to green::queue_empty/queue_full,
// ValueError (over-release) and RuntimeError (releasing another greenlet's RLock) to
// green::error. The printed lines keep the Python names, since they are what the trace pins.
#include "oracle.hpp"

#include <green/hub.hpp>
#include <green/lock.hpp>
#include <green/pool.hpp>
#include <green/queue.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using green::repr;

namespace {

std::string py_bool(bool b) { return b ? "True" : "False"; }

std::string bool_list(const std::vector<bool>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += std::string(i ? ", " : "") + py_bool(v[i]);
    return out + "]";
}

// Python's '%.2f' % t.
std::string two_decimals(double t) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f", t);
    return text;
}

green::duration seconds(double t) { return std::chrono::duration<double>(t); }

}  // namespace

TEST_CASE("case09_queue_producer_consumer") {
    oracle::trace say;
    say("-- bounded Queue(maxsize=2), 1 producer, 1 consumer");
    // Python ends the iteration by putting the StopIteration class; here the queue holds
    // std::optional<int> and std::nullopt is that sentinel: it is put (and waits for room)
    // like any item, and iterating the queue stops when it is dequeued.
    green::queue<std::optional<int>> q(2);
    auto producer = [&] {
        for (int i = 0; i < 5; ++i) {
            say("put " + std::to_string(i) + " ...");
            q.put(i);
            say("put " + std::to_string(i) + " done (qsize=" + std::to_string(q.qsize()) + ")");
        }
        q.put(std::nullopt);
        say("producer done");
    };
    auto consumer = [&] {
        green::sleep(50ms);  // let the producer fill the queue first
        for (int item : q) {
            say("  got " + std::to_string(item));
            green::sleep(10ms);
        }
        say("consumer done");
    };
    green::joinall({green::spawn(producer), green::spawn(consumer)});

    say("-- blocked getters are served FIFO");
    green::queue<std::string> letters;
    auto getter = [&](std::string name) { say(name + " got " + repr(letters.get())); };
    std::vector<green::any_task> gs;
    for (int i = 0; i < 3; ++i) gs.push_back(green::spawn(getter, "g" + std::to_string(i)));
    green::sleep();  // all three now blocked in get()
    for (char x : std::string("abc")) letters.put(std::string(1, x));
    green::joinall(gs);

    say("-- timeouts and nowait");
    green::queue<std::string> one(1);
    try {
        one.get(50ms);
    } catch (const green::queue_empty&) {
        say("get(timeout) -> Empty");
    }
    one.put_nowait("x");
    try {
        one.put_nowait("y");
    } catch (const green::queue_full&) {
        say("put_nowait on full -> Full");
    }
    try {
        one.put("y", 50ms);
    } catch (const green::queue_full&) {
        say("put(timeout) on full -> Full");
    }

    say("-- JoinableQueue: join() waits for task_done() of every item");
    green::joinable_queue<int> jq;
    auto worker = [&](int n) {
        for (;;) {
            int item = jq.get();
            green::sleep(std::chrono::milliseconds(50 * item));
            say("  worker" + std::to_string(n) + " finished item " + std::to_string(item));
            jq.task_done();
        }
    };
    std::vector<green::any_task> workers{green::spawn(worker, 0), green::spawn(worker, 1)};
    for (int item : {4, 1, 2}) jq.put(item);
    const bool joined = jq.join();  // before unfinished_tasks(): C++ leaves argument order open
    say("join() ->", joined, "unfinished =", jq.unfinished_tasks());
    green::killall(workers);

    say("-- PriorityQueue / LifoQueue ordering");
    green::priority_queue<int> pq;
    for (int x : {5, 1, 3}) pq.put(x);
    std::vector<int> out;
    for (int i = 0; i < 3; ++i) out.push_back(pq.get());
    say("priority:", repr(out));
    green::lifo_queue<int> lq;
    for (int x : {5, 1, 3}) lq.put(x);
    out.clear();
    for (int i = 0; i < 3; ++i) out.push_back(lq.get());
    say("lifo:", repr(out));

    say("-- Channel: put() blocks until a getter takes the item (rendezvous)");
    green::channel<std::string> ch;
    auto chan_putter = [&] {
        say("put A ...");
        ch.put("A");
        say("put A returned (a getter took it)");
    };
    auto chan_getter = [&] {
        green::sleep(50ms);
        say("getting ...");
        say("got", ch.get());
    };
    green::joinall({green::spawn(chan_putter), green::spawn(chan_getter)});
    oracle::compare(say, "gevent", "case09_queue_producer_consumer");
}

TEST_CASE("case10_pool_size2") {
    oracle::trace say;
    int active = 0;
    int peak = 0;
    auto task = [&](std::string name, green::duration t) {
        active += 1;
        peak = std::max(peak, active);
        say("  start " + name + " (active=" + std::to_string(active) + ")");
        green::sleep(t);
        active -= 1;
        say("  end   " + name);
        return name;
    };
    auto nap = [](green::duration t) { green::sleep(t); };  // gevent.sleep as a task

    green::pool pool(2);
    say("-- spawn 4 tasks into Pool(2); durations a=0.1 b=0.25 c=0.1 d=0.1");
    const std::vector<std::pair<std::string, double>> plan{{"a", 0.1}, {"b", 0.25}, {"c", 0.1}, {"d", 0.1}};
    for (const auto& [name, t] : plan) {
        say("spawn " + name + ": free_count=" + std::to_string(pool.free_count()) + " full=" + py_bool(pool.full()));
        pool.spawn(task, name, seconds(t));
        say("spawn " + name + " returned");
    }
    pool.join();
    say("joined; peak concurrency =", peak, "; len(pool) =", pool.size());

    say("-- map keeps input order (durations 0.3, 0.1, 0.15)");
    peak = 0;
    auto res = pool.map([&](double t) { return task("m" + two_decimals(t), seconds(t)); }, std::vector{0.3, 0.1, 0.15});
    say("map ->", repr(res), "; peak =", peak);

    say("-- imap_unordered yields in completion order (durations 0.3, 0.1, 0.15)");
    peak = 0;
    for (const std::string& r :
         pool.imap_unordered([&](double t) { return task("u" + two_decimals(t), seconds(t)); }, std::vector{0.3, 0.1, 0.15}))
        say("imap_unordered yielded", r);
    say("peak =", peak);

    say("-- wait_available(timeout) on a full pool");
    pool.spawn(nap, 100ms);
    pool.spawn(nap, 300ms);
    say("wait_available(timeout=0.05) ->", pool.wait_available(50ms));
    say("wait_available() -> " + std::to_string(pool.wait_available()) + " (woken when the 0.1 s member ended)");
    pool.kill();
    say("after kill: len =", pool.size());

    say("-- apply_async never blocks, even on a full pool");
    pool.spawn(nap, 100ms);
    pool.spawn(nap, 100ms);
    auto g = pool.apply_async([] { return std::string("async-result"); });
    say("apply_async returned immediately; get() ->", g.get());
    pool.join();

    say("-- Group: unbounded tracking, join(), kill()");
    green::group grp;
    for (int n = 0; n < 3; ++n) grp.spawn(nap, 10s);
    say("group size", grp.size());
    say("join(timeout=0.05) ->", grp.join(50ms));
    grp.kill();
    const std::size_t left = grp.size();
    say("after kill size", left, "; join() ->", grp.join());
    oracle::compare(say, "gevent", "case10_pool_size2");
}

TEST_CASE("case14_locks") {
    oracle::trace say;
    say("-- Semaphore(2): at most 2 holders, waiters served FIFO");
    green::semaphore sem(2);
    auto user = [&](std::string name, green::duration hold) {
        say(name + " wants");
        {
            std::lock_guard holding(sem);
            say(name + " holds (counter=" + std::to_string(sem.counter()) + ")");
            green::sleep(hold);
        }
        say(name + " released");
    };
    // hold times u1=0.1 u2=0.25 u3=0.2 u4=0.1 -> u3 gets u1's slot, u4 gets u2's
    green::joinall({green::spawn(user, "u1", 100ms), green::spawn(user, "u2", 250ms), green::spawn(user, "u3", 200ms),
                    green::spawn(user, "u4", 100ms)});

    say("-- release() does not switch to the woken waiter immediately");
    green::semaphore lock(1);
    lock.acquire();
    auto w = green::spawn([&] {
        lock.acquire();
        say("waiter acquired");
    });
    green::sleep();
    say("main: release()");
    lock.release();
    say("main: after release(), waiter not yet run; locked=" + py_bool(lock.locked()));
    w.join();

    say("-- non-blocking and timed acquire");
    green::semaphore held(1);
    held.acquire();
    say("acquire(blocking=False) ->", held.acquire(0s));
    say("acquire(timeout=0.05) ->", held.acquire(50ms));
    held.release();

    say("-- over-release");
    green::semaphore s(1);
    s.release();
    say("Semaphore over-release ok, counter =", s.counter());
    green::bounded_semaphore b(1);
    try {
        b.release();
    } catch (const green::error& e) {
        say("BoundedSemaphore over-release -> ValueError:", e.what());
    }

    say("-- RLock re-entrancy and ownership");
    green::rlock rl;
    auto reenter = [&] {
        {
            std::lock_guard outer(rl);
            std::lock_guard inner(rl);
            say("owner holds RLock twice");
            green::sleep(50ms);
        }
        say("owner released both levels");
    };
    auto intruder = [&] {
        try {
            rl.release();
        } catch (const green::error&) {
            say("non-owner release -> RuntimeError");
        }
        say("intruder acquire(timeout=0.01) ->", rl.acquire(10ms));
        rl.acquire();
        say("intruder acquired after owner released");
        rl.release();
    };
    green::joinall({green::spawn(reenter), green::spawn(intruder)});

    say("-- DummySemaphore never blocks");
    green::dummy_semaphore d;
    std::vector<bool> acquired;
    for (int i = 0; i < 3; ++i) acquired.push_back(d.acquire());
    say("acquire x3 ->", bool_list(acquired), "locked =", d.locked());
    oracle::compare(say, "gevent", "case14_locks");
}
