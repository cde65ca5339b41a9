// gevent.pool in C++: group membership, join and kill; the pool's slots (spawn waiting while
// full, no slot leaked by a kill), map and imap_unordered order and concurrency, apply_async.
#include <green/hub.hpp>
#include <green/pool.hpp>
#include <green/timeout.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using trace_t = std::vector<std::string>;

namespace {

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Counts how many run at once.
struct concurrency {
    int active = 0;
    int peak = 0;
    void enter() { peak = std::max(peak, ++active); }
    void leave() { --active; }
};

auto nap = [](green::duration d) { green::sleep(d); };

}  // namespace

TEST_CASE("the pool.hpp example: two at a time; map in input order, imap_unordered as they finish") {
    trace_t trace;
    green::pool workers(2);
    const auto start = clock_type::now();
    for (int i = 0; i < 4; ++i)
        workers.spawn([&, i] {
            green::sleep(100ms);
            trace.push_back(std::to_string(i));
        });
    workers.join();
    const double took = seconds_since(start);
    CHECK(trace == trace_t{"0", "1", "2", "3"});
    CHECK(took >= 0.195);  // two rounds of 100 ms, not one
    CHECK(took < 0.39);    // nor four

    auto square = [](int x) {
        green::sleep(std::chrono::milliseconds(10 * x));
        return x * x;
    };
    CHECK(workers.map(square, std::vector{5, 1, 2}) == std::vector<int>{25, 1, 4});
    std::vector<int> unordered;
    for (int r : workers.imap_unordered(square, std::vector{5, 1, 2})) unordered.push_back(r);
    CHECK(unordered == std::vector<int>{1, 4, 25});
}

TEST_CASE("pool: spawn waits for a free slot, so at most `size` members run") {
    green::pool p(3);
    concurrency c;
    trace_t trace;
    bool first_done = false;
    for (int i = 0; i < 10; ++i) {
        if (i == 3) trace.push_back("spawning the 4th with free_count " + std::to_string(p.free_count()));
        p.spawn([&, i] {
            c.enter();
            green::sleep(std::chrono::milliseconds(5 + 5 * i));
            c.leave();
            if (i == 0) first_done = true;
        });
        if (i == 3) trace.push_back("spawned the 4th; the 1st is " + std::string(first_done ? "done" : "running"));
        CHECK(p.size() <= 3);
    }
    p.join();
    CHECK(c.peak == 3);
    CHECK(trace == trace_t{"spawning the 4th with free_count 0", "spawned the 4th; the 1st is done"});
    CHECK(p.free_count() == 3);
    CHECK(p.capacity() == 3);
}

TEST_CASE("pool: a greenlet killed while waiting for a slot takes none") {
    green::pool p(1);
    p.spawn(nap, 10s);
    auto blocked = green::spawn([&] { p.spawn(nap, 1ms); });
    green::sleep();
    CHECK(p.full());
    blocked.kill();
    CHECK(blocked.dead());
    CHECK(p.size() == 1);
    p.kill();
    CHECK(p.free_count() == 1);
    CHECK(p.wait_available(0s) == 1);
    p.spawn(nap, 1ms);  // the slot is there
    p.join();
}

TEST_CASE("pool: a member killed frees its slot, and the next spawner gets it") {
    green::pool p(1);
    auto member = p.spawn(nap, 10s);
    bool spawned = false;
    auto spawner = green::spawn([&] {
        p.spawn(nap, 1ms);
        spawned = true;
    });
    green::sleep();
    CHECK_FALSE(spawned);
    member.kill();
    spawner.join();
    CHECK(spawned);
    p.join();
    CHECK(p.free_count() == 1);
}

TEST_CASE("pool: add with a timeout, pool_full, size 0 and unbounded pools") {
    green::pool p(1);
    auto first = p.spawn(nap, 10s);
    green::task<void> extra(nap, green::duration(1ms));
    CHECK_THROWS_WITH_AS(p.add(extra, 0s), "pool::add: no free slot", green::pool_full);
    CHECK_THROWS_WITH_AS(p.add(extra, 5ms), "pool::add: no free slot within the timeout", green::pool_full);
    CHECK_THROWS_AS(p.add(extra, 5ms), green::queue_full);  // PoolFull is a queue.Full
    first.kill({.block = false});
    p.add(extra, 1s);  // the first member leaves meanwhile
    CHECK(p.contains(extra));
    extra.start();
    p.join();

    green::pool none(0);
    CHECK(none.full());
    CHECK(none.free_count() == 0);
    CHECK_THROWS_AS(none.add(extra, 1ms), green::pool_full);
    CHECK(none.wait_available(1ms) == 0);

    green::pool unbounded;
    CHECK_FALSE(unbounded.capacity());
    for (int i = 0; i < 100; ++i) unbounded.spawn(nap, 1ms);
    CHECK(unbounded.size() == 100);
    CHECK(unbounded.free_count() == 1);
    CHECK_FALSE(unbounded.full());
    CHECK(unbounded.wait_available() == 1);
    unbounded.join();

    CHECK_THROWS_WITH_AS(green::pool(-1), "pool: the size must not be negative, not -1", green::error);
}

TEST_CASE("pool: wait_available returns the free slots without taking one") {
    green::pool p(2);
    p.spawn(nap, 10ms);
    p.spawn(nap, 40ms);
    CHECK(p.wait_available(1ms) == 0);
    CHECK(p.wait_available() == 1);
    CHECK(p.size() == 1);
    p.join();
}

TEST_CASE("map keeps input order, caps concurrency, and works for void functions") {
    green::pool p(2);
    concurrency c;
    auto work = [&](int ms) {
        c.enter();
        green::sleep(std::chrono::milliseconds(ms));
        c.leave();
        return "r" + std::to_string(ms);
    };
    CHECK(p.map(work, std::vector{30, 10, 20, 5}) == std::vector<std::string>{"r30", "r10", "r20", "r5"});
    CHECK(c.peak == 2);
    int sum = 0;
    p.map([&](int x) { sum += x; }, std::vector{1, 2, 3});
    CHECK(sum == 6);
    green::group unbounded;
    CHECK(unbounded.map([](const std::string& s) { return s + s; }, std::vector<std::string>{"a", "b"}) ==
          std::vector<std::string>{"aa", "bb"});
}

TEST_CASE("map rethrows the first failure in input order and kills what still runs") {
    green::pool p(3);
    bool slow_killed = false;
    auto work = [&](int x) {
        if (x == 1) {
            try {
                green::sleep(10s);
            } catch (const green::greenlet_exit&) {
                slow_killed = true;
                throw;
            }
        }
        if (x == 2) throw std::runtime_error("two failed");
        return x;
    };
    green::hub::error_handler previous = green::get_hub().set_error_handler([](auto, auto) {});
    CHECK_THROWS_WITH_AS(p.map(work, std::vector{0, 2, 1}), "two failed", std::runtime_error);
    green::get_hub().set_error_handler(previous);
    CHECK(slow_killed);
    CHECK(p.empty());
}

TEST_CASE("imap_unordered yields in completion order with the pool's cap") {
    green::pool p(2);
    concurrency c;
    trace_t trace;
    auto work = [&](int ms) {
        c.enter();
        trace.push_back("start " + std::to_string(ms));
        green::sleep(std::chrono::milliseconds(ms));
        c.leave();
        return ms;
    };
    std::vector<int> got;
    for (int r : p.imap_unordered(work, std::vector{200, 10, 15, 1})) {
        got.push_back(r);
        trace.push_back("yielded " + std::to_string(r));
    }
    // 1 waits for a slot until 15 is done: it starts after 15 ends, and still ends before 200.
    CHECK(got == std::vector<int>{10, 15, 1, 200});
    CHECK(c.peak == 2);
    CHECK(trace == trace_t{"start 200", "start 10", "yielded 10", "start 15", "yielded 15", "start 1", "yielded 1",
                           "yielded 200"});
    CHECK(p.empty());
}

TEST_CASE("leaving imap_unordered early kills what it started") {
    green::pool p(2);
    int started = 0;
    int finished = 0;
    int killed = 0;
    auto work = [&](int ms) {
        ++started;
        try {
            green::sleep(std::chrono::milliseconds(ms));
        } catch (const green::greenlet_exit&) {
            ++killed;
            throw;
        }
        ++finished;
        return ms;
    };
    for (int r : p.imap_unordered(work, std::vector{5, 1000, 1000, 1000})) {
        CHECK(r == 5);
        break;
    }
    CHECK(finished == 1);
    CHECK(started <= 3);  // the fourth waited for a slot, and the feeder was killed first
    CHECK(killed == started - finished);
    CHECK(p.empty());
    CHECK(p.free_count() == 2);
}

TEST_CASE("imap_unordered rethrows a failure when it is reached") {
    green::group g;
    green::hub::error_handler previous = green::get_hub().set_error_handler([](auto, auto) {});
    std::vector<int> got;
    try {
        for (int r : g.imap_unordered(
                 [](int x) {
                     green::sleep(std::chrono::milliseconds(x));
                     if (x == 20) throw std::runtime_error("twenty");
                     return x;
                 },
                 std::vector{30, 20, 10}))
            got.push_back(r);
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "twenty");
    }
    green::get_hub().set_error_handler(previous);
    CHECK(got == std::vector<int>{10});
    CHECK(g.empty());
}

TEST_CASE("apply_async never blocks, even on a full pool; the function still runs in a member") {
    green::pool p(1);
    concurrency c;
    auto work = [&](int x) {
        c.enter();
        green::sleep(5ms);
        c.leave();
        return x * 10;
    };
    bool yielded = false;
    auto marker = green::spawn([&] { yielded = true; });
    auto first = p.apply_async(work, 1);
    CHECK(p.full());
    auto second = p.apply_async(work, 2);
    auto third = p.apply_async(work, 3);
    CHECK_FALSE(yielded);  // returned at once
    CHECK(first.get() == 10);
    CHECK(second.get() == 20);
    CHECK(third.get() == 30);
    CHECK(c.peak == 1);
    p.join();
}

TEST_CASE("group: members leave as they finish; add, discard, contains, iteration") {
    green::group g;
    CHECK(g.empty());
    auto a = g.spawn(nap, 10ms);
    auto b = g.spawn(nap, 1s);
    green::task<int> c([] { return 3; });
    g.start(c);
    g.add(c);  // already a member: nothing
    CHECK(g.size() == 3);
    CHECK(g.contains(a));
    trace_t names;
    for (const green::any_task& t : g) names.push_back(t == a ? "a" : t == b ? "b" : "c");
    CHECK(names == trace_t{"a", "b", "c"});
    CHECK(g.tasks().size() == 3);
    c.join();
    green::sleep();
    CHECK_FALSE(g.contains(c));
    g.discard(b);
    CHECK_FALSE(g.contains(b));
    CHECK(b);  // still running, just not tracked
    CHECK(g.join());
    CHECK(a.dead());
    b.kill();

    auto done = green::spawn([] {});
    done.join();
    g.add(done);  // already finished: leaves at the next turn
    CHECK(g.size() == 1);
    green::sleep();
    CHECK(g.empty());
}

TEST_CASE("group: iterating while members change is an error, iterating tasks() is fine") {
    green::group g;
    g.spawn(nap, 1ms);
    g.spawn(nap, 50ms);
    CHECK_THROWS_WITH_AS(
        [&] {
            for (const green::any_task& t : g) t.join();
        }(),
        "group: a member joined or left during the iteration (iterate over tasks() to wait in the loop)", green::error);
    for (const green::any_task& t : g.tasks()) t.join();
    CHECK(g.empty());
}

TEST_CASE("group: join waits until it was empty once; timeouts and raise_error") {
    green::group g;
    CHECK(g.join(0s));
    g.spawn(nap, 20ms);
    CHECK_FALSE(g.join(1ms));
    // A member joining after the group emptied does not hold join back.
    green::spawn([&] {
        g.join();
        g.spawn(nap, 1s);  // woken first, it refills the group before main runs
    });
    green::sleep();
    CHECK(g.join());
    CHECK(g.size() == 1);
    g.kill();

    green::hub::error_handler previous = green::get_hub().set_error_handler([](auto, auto) {});
    g.spawn([] { throw std::runtime_error("member failed"); });
    g.spawn(nap, 5ms);
    CHECK_THROWS_WITH_AS(g.join({.raise_error = true}), "member failed", std::runtime_error);
    green::get_hub().set_error_handler(previous);
    CHECK(g.join({.timeout = 1s}));
    CHECK_THROWS_AS(g.join(-1ms), green::error);
}

TEST_CASE("group: kill kills every member, and gives up at its timeout") {
    green::group g;
    trace_t trace;
    for (int i = 0; i < 3; ++i)
        g.spawn([&, i] {
            try {
                green::sleep(10s);
            } catch (const green::greenlet_exit&) {
                trace.push_back("killed " + std::to_string(i));
                throw;
            }
        });
    green::sleep();
    g.kill();
    CHECK(g.empty());
    CHECK(trace == trace_t{"killed 0", "killed 1", "killed 2"});

    auto immortal = g.spawn([] {
        for (;;) {
            try {
                green::sleep(10s);
            } catch (const green::greenlet_exit&) {
            }
        }
    });
    green::sleep();
    const auto start = clock_type::now();
    g.kill({.timeout = 20ms});
    CHECK(seconds_since(start) >= 0.015);
    CHECK(g.size() == 1);
    g.discard(immortal);
    immortal.kill(std::make_exception_ptr(std::runtime_error("really")), {.block = false});
    green::hub::error_handler previous = green::get_hub().set_error_handler([](auto, auto) {});
    immortal.join();
    green::get_hub().set_error_handler(previous);

    auto a = g.spawn(nap, 10s);
    auto b = g.spawn(nap, 10s);
    green::sleep();
    g.killone(a);
    CHECK(a.dead());
    CHECK(g.size() == 1);
    g.kill({.block = false});
    CHECK(g.size() == 1);  // dies at the hub's next turn
    CHECK(g.join());
    CHECK(b.dead());
}

TEST_CASE("a group that goes away kills its members and waits for them") {
    bool cleaned_up = false;
    green::any_task member = green::spawn([] {});
    {
        green::pool p(2);
        member = p.spawn([&] {
            try {
                green::sleep(10s);
            } catch (const green::greenlet_exit&) {
                green::sleep(1ms);  // cleanup may wait
                cleaned_up = true;
                throw;
            }
        });
        p.spawn(nap, 10s);
        auto waiting = p.apply_async(nap, green::duration(10s));  // waits for a slot, outside the pool
        green::sleep();
    }
    CHECK(cleaned_up);
    CHECK(member.dead());
}

TEST_CASE("misuse: negative timeouts are green::error") {
    green::pool p(1);
    green::task<void> t(nap, green::duration(1ms));
    CHECK_THROWS_WITH_AS(p.add(t, -1ms), "group::add: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(p.wait_available(-1ms), "pool::wait_available: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(p.join(-1ms), "group::join: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(p.kill({.timeout = -1ms}), "group::kill: negative timeout", green::error);
    CHECK(p.empty());
}

TEST_CASE("a pool whose members all spawn into it deadlocks: loop_exit says where main waits") {
    green::pool p(1);
    p.spawn([&] { p.spawn(nap, 1ms); });  // waits for its own slot
    try {
        p.join();
        FAIL("no loop_exit");
    } catch (const green::loop_exit& e) {
        const std::string what = e.what();
        CHECK(what.find("waits in pool (for a free slot)") != std::string::npos);
        CHECK(what.find("the main greenlet waits in group::join") != std::string::npos);
    }
    p.kill();
    CHECK(p.empty());
    CHECK(p.free_count() == 1);
}
