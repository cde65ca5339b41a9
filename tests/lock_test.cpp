// gevent.lock in C++: semaphores, lock, rlock — timeouts, FIFO waking, release after the caller
// yields, kills and timeouts while blocked, the hub's rules, and deadlock detection.
#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/lock.hpp>
#include <green/timeout.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using trace_t = std::vector<std::string>;

namespace {

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

TEST_CASE("the lock.hpp example: two slots, three users") {
    trace_t trace;
    green::semaphore slots(2);
    auto fetch = [&](std::string url, green::duration takes) {
        std::lock_guard hold(slots);
        trace.push_back("start " + url);
        green::sleep(takes);
        trace.push_back("end " + url);
    };
    green::joinall({green::spawn(fetch, "a", 10ms), green::spawn(fetch, "b", 80ms), green::spawn(fetch, "c", 10ms)});
    // c waits for a slot: it starts once a (the shorter one) has ended.
    REQUIRE(trace.size() == 6);
    CHECK(trace[0] == "start a");
    CHECK(trace[1] == "start b");
    CHECK(trace[2] == "end a");
    CHECK(trace[3] == "start c");
    CHECK(slots.counter() == 2);

    green::lock mutex;
    REQUIRE(mutex.acquire(50ms));
    CHECK(mutex.locked());
    mutex.release();
    CHECK_FALSE(mutex.locked());
}

TEST_CASE("acquire takes a unit, release gives it back; the counter never goes negative") {
    green::semaphore s(3);
    CHECK(s.acquire());
    CHECK(s.acquire());
    CHECK(s.counter() == 1);
    CHECK_FALSE(s.locked());
    CHECK(s.acquire());
    CHECK(s.counter() == 0);
    CHECK(s.locked());
    CHECK_FALSE(s.acquire(0s));
    CHECK(s.counter() == 0);
    s.release();
    s.release();
    s.release();
    CHECK(s.counter() == 3);
}

TEST_CASE("acquire(0s) on a taken semaphore returns false without yielding") {
    green::semaphore s(0);
    bool other_ran = false;
    auto other = green::spawn([&] { other_ran = true; });
    CHECK_FALSE(s.acquire(0s));
    CHECK_FALSE(other_ran);
    other.join();
}

TEST_CASE("acquire(timeout) returns false after about the timeout and leaves no waiter behind") {
    green::semaphore s(0);
    const auto start = clock_type::now();
    CHECK_FALSE(s.acquire(50ms));
    const double waited = seconds_since(start);
    CHECK(waited >= 0.045);
    CHECK(waited < 1.0);
    // The timed-out greenlet is not in the list any more: the next release keeps its unit.
    s.release();
    green::sleep();
    CHECK(s.counter() == 1);
}

TEST_CASE("waiters are woken first come, first served, one per unit released") {
    green::semaphore s(0);
    trace_t trace;
    std::vector<green::any_task> waiters;
    for (int i = 0; i < 4; ++i)
        waiters.push_back(green::spawn([&, i] {
            s.acquire();
            trace.push_back("w" + std::to_string(i));
        }));
    green::sleep();  // all four wait, in order
    s.release();
    green::sleep();
    CHECK(trace == trace_t{"w0"});
    s.release();
    s.release();
    green::sleep();
    CHECK(trace == trace_t{"w0", "w1", "w2"});
    s.release();
    green::joinall(waiters);
    CHECK(trace == trace_t{"w0", "w1", "w2", "w3"});
    CHECK(s.counter() == 0);
}

TEST_CASE("release() does not switch: the woken waiter runs after the releaser yields") {
    green::semaphore s(0);
    trace_t trace;
    auto waiter = green::spawn([&] {
        s.acquire();
        trace.push_back("waiter acquired");
    });
    green::sleep();
    s.release();
    trace.push_back("released");
    CHECK(s.counter() == 1);  // the unit is there until the waiter runs and takes it
    CHECK_FALSE(s.locked());
    waiter.join();
    CHECK(trace == trace_t{"released", "waiter acquired"});
    CHECK(s.counter() == 0);
}

TEST_CASE("a newcomer may take a released unit before the woken waiter runs; the waiter stays first") {
    // gevent's rule: acquire() takes a free unit at once, whoever waits.
    green::semaphore s(0);
    trace_t trace;
    auto first = green::spawn([&] {
        s.acquire();
        trace.push_back("first");
    });
    auto second = green::spawn([&] {
        green::sleep();
        s.acquire();
        trace.push_back("second");
    });
    green::sleep();
    green::sleep();  // both wait, first in front
    s.release();
    CHECK(s.acquire(0s));  // main barges in
    green::sleep();
    CHECK(trace.empty());
    s.release();
    s.release();
    green::joinall({first, second});
    CHECK(trace == trace_t{"first", "second"});
}

TEST_CASE("wait() waits for a free unit without taking it, in line with acquirers") {
    green::semaphore s(0);
    trace_t trace;
    auto watcher = green::spawn([&] { trace.push_back("wait -> " + std::to_string(s.wait())); });
    auto taker = green::spawn([&] {
        s.acquire();
        trace.push_back("acquired, counter " + std::to_string(s.counter()));
    });
    green::sleep();
    CHECK(s.wait(0s) == 0);
    CHECK(s.wait(20ms) == 0);
    s.release();
    green::joinall({watcher, taker});
    CHECK(trace == trace_t{"wait -> 1", "acquired, counter 0"});
    s.release();
    CHECK(s.wait() == 1);
    CHECK(s.counter() == 1);
}

TEST_CASE("a waiter killed while blocked leaves the semaphore; the next waiter gets the unit") {
    green::semaphore s(0);
    trace_t trace;
    auto make = [&](std::string name) {
        return green::spawn([&, name] {
            try {
                s.acquire();
                trace.push_back(name + " acquired");
            } catch (const green::greenlet_exit&) {
                trace.push_back(name + " killed");
                throw;
            }
        });
    };
    auto a = make("a");
    auto b = make("b");
    auto c = make("c");
    green::sleep();
    b.kill();
    CHECK(trace == trace_t{"b killed"});
    // The kill lands before the notifier runs: the unit goes to the one behind.
    a.kill({.block = false});
    s.release();
    green::joinall({a, b});
    green::sleep();
    CHECK(trace == trace_t{"b killed", "a killed", "c acquired"});
    CHECK(c.dead());
    CHECK(s.counter() == 0);
    s.release();
    CHECK(s.counter() == 1);
}

TEST_CASE("a waiter woken and then killed releases what it holds as it unwinds") {
    green::semaphore s(0);
    trace_t trace;
    auto a = green::spawn([&] {
        std::lock_guard hold(s);
        trace.push_back("a holds");
        green::sleep(10s);
    });
    auto b = green::spawn([&] {
        std::lock_guard hold(s);
        trace.push_back("b holds");
    });
    green::sleep();
    s.release();         // wakes a first...
    a.kill({.block = false});  // ...and the kill finds it holding the unit, in its sleep
    b.join();
    CHECK(trace == trace_t{"a holds", "b holds"});
    CHECK(s.counter() == 1);
}

TEST_CASE("a timeout thrown into a blocked waiter leaves the semaphore consistent") {
    green::semaphore s(0);
    bool timed_out = false;
    auto a = green::spawn([&] {
        green::timeout limit(20ms);
        try {
            s.acquire();
        } catch (const green::timeout_error& e) {
            timed_out = e.is(limit);
        }
    });
    bool b_got_it = false;
    auto b = green::spawn([&] {
        s.acquire();
        b_got_it = true;
    });
    a.join();
    CHECK(timed_out);
    s.release();
    b.join();
    CHECK(b_got_it);
    CHECK(s.counter() == 0);
}

TEST_CASE("a waiter may destroy the semaphore that woke it") {
    auto* s = new green::semaphore(0);
    auto owner = green::spawn([&] {
        s->acquire();
        delete s;  // the notifier that woke us must not touch it again
        s = nullptr;
    });
    auto other = green::spawn([&] { s->acquire(); });
    green::sleep();
    s->release();
    s->release();
    owner.join();
    CHECK(s == nullptr);
    CHECK_FALSE(other.ready());  // its semaphore is gone: it waits until killed
    other.kill();
    CHECK(other.dead());
}

TEST_CASE("bounded_semaphore and lock refuse to be released too many times") {
    green::bounded_semaphore b(2);
    b.acquire();
    b.release();
    try {
        b.release();
        FAIL("no exception");
    } catch (const green::error& e) {
        CHECK(std::string(e.what()) == "Semaphore released too many times");
    }
    CHECK(b.counter() == 2);

    green::lock m;
    CHECK_THROWS_WITH_AS(m.release(), "lock::release: the lock is not locked", green::error);
    m.lock();
    m.unlock();
    CHECK(m.counter() == 1);

    green::semaphore plain(1);
    plain.release();  // allowed, as in gevent
    CHECK(plain.counter() == 2);
}

TEST_CASE("misuse: negative values and timeouts are green::error") {
    CHECK_THROWS_WITH_AS(green::semaphore(-1), "semaphore: the initial value must be >= 0, not -1", green::error);
    green::semaphore s(0);
    CHECK_THROWS_WITH_AS(s.acquire(-1ms), "semaphore::acquire: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(s.wait(-1ms), "semaphore::wait: negative timeout", green::error);
    green::rlock r;
    CHECK_THROWS_WITH_AS(r.acquire(-1ms), "rlock::acquire: negative timeout", green::error);
    green::dummy_semaphore d;
    CHECK_THROWS_AS(d.acquire(-1ms), green::error);
}

TEST_CASE("the std lock types hold green locks, and try_lock_for waits") {
    green::semaphore s(1);
    {
        std::unique_lock hold(s);
        CHECK(s.locked());
        auto other = green::spawn([&] {
            std::unique_lock attempt(s, std::try_to_lock);
            CHECK_FALSE(attempt.owns_lock());
            std::unique_lock timed(s, std::defer_lock);
            CHECK_FALSE(timed.try_lock_for(10ms));
            CHECK_FALSE(timed.try_lock_until(clock_type::now() + 10ms));
        });
        other.join();
    }
    CHECK(s.counter() == 1);
    std::unique_lock again(s, std::defer_lock);
    CHECK(again.try_lock_for(-5ms));  // a time already past: try once, as std::timed_mutex does
}

TEST_CASE("release() works in the hub; blocking acquire there is blocking_switch_error") {
    green::semaphore s(0);
    trace_t trace;
    auto waiter = green::spawn([&] {
        s.acquire();
        trace.push_back("waiter acquired");
    });
    green::sleep();
    green::get_hub().run_callback([&] {
        trace.push_back(std::string("acquire(0s) in the hub -> ") + (s.acquire(0s) ? "true" : "false"));
        try {
            s.acquire();
        } catch (const green::blocking_switch_error&) {
            trace.push_back("blocking acquire in the hub -> blocking_switch_error");
        }
        s.release();
        trace.push_back("released in the hub");
    });
    waiter.join();
    CHECK(trace == trace_t{"acquire(0s) in the hub -> false", "blocking acquire in the hub -> blocking_switch_error",
                           "released in the hub", "waiter acquired"});
}

TEST_CASE("a two-lock deadlock ends in loop_exit; killing the tasks releases both locks") {
    green::lock first, second;
    auto t1 = green::spawn([&] {
        std::lock_guard a(first);
        green::sleep(10ms);
        std::lock_guard b(second);
    });
    auto t2 = green::spawn([&] {
        std::lock_guard b(second);
        green::sleep(10ms);
        std::lock_guard a(first);
    });
    try {
        green::joinall({t1, t2});
        FAIL("no loop_exit");
    } catch (const green::loop_exit& e) {
        const std::string what = e.what();
        CHECK(what.rfind("This operation would block forever", 0) == 0);
        CHECK(what.find("semaphore::acquire") != std::string::npos);
    }
    green::killall({t1, t2});
    CHECK(t1.dead());
    CHECK(t2.dead());
    CHECK_FALSE(first.locked());
    CHECK_FALSE(second.locked());
}

TEST_CASE("iwait yields a semaphore once a unit is free") {
    green::semaphore s(0);
    green::spawn([&] {
        green::sleep(10ms);
        s.release();
    });
    std::vector<green::waitable> ready = green::wait({s}, {.timeout = 1s});
    REQUIRE(ready.size() == 1);
    CHECK(ready[0] == green::waitable(s));
    CHECK(s.acquire(0s));
    CHECK(green::wait({s}, {.timeout = 10ms}).empty());
}

TEST_CASE("rlock: re-entrant for its owner, exclusive for others") {
    green::rlock r;
    CHECK_FALSE(r.locked());
    CHECK(r.acquire());
    CHECK(r.acquire(0s));
    CHECK(r.owned());
    trace_t trace;
    green::event tried;
    auto other = green::spawn([&] {
        CHECK_FALSE(r.owned());
        CHECK_THROWS_WITH_AS(r.release(), "rlock::release: the lock belongs to another greenlet", green::error);
        CHECK_FALSE(r.try_lock());
        CHECK_FALSE(r.acquire(10ms));
        tried.set();
        r.acquire();
        trace.push_back("other acquired");
        r.release();
    });
    tried.wait();
    r.release();
    CHECK(r.locked());  // still held once
    green::sleep();
    CHECK(trace.empty());
    r.release();
    CHECK_FALSE(r.locked());
    other.join();
    CHECK(trace == trace_t{"other acquired"});
    CHECK_THROWS_WITH_AS(r.release(), "rlock::release: the lock is not locked", green::error);
}

TEST_CASE("rlock: a holder killed inside nested guards releases every level") {
    green::rlock r;
    auto holder = green::spawn([&] {
        std::lock_guard outer(r);
        std::lock_guard inner(r);
        green::sleep(10s);
    });
    bool other_got_it = false;
    auto other = green::spawn([&] {
        std::lock_guard hold(r);
        other_got_it = true;
    });
    green::sleep();
    CHECK(r.locked());
    holder.kill();
    other.join();
    CHECK(other_got_it);
    CHECK_FALSE(r.locked());
}

TEST_CASE("dummy_semaphore never blocks") {
    green::dummy_semaphore d;
    CHECK(d.acquire());
    CHECK(d.acquire(0s));
    CHECK(d.wait() == 1);
    d.release();
    CHECK_FALSE(d.locked());
    std::lock_guard hold(d);
}
