// The threadpool: what comes back from the workers, cooperative waiting, the maxsize bound, the
// loop kept alive by pending jobs, teardown (destructor, kill, thread exit) and misuse.
//
// Nothing here asserts timings beyond wide bounds: where order matters, jobs wait on gates the
// test opens (with a generous timeout, so a broken pool fails instead of hanging).
#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/threadpool.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// A door worker threads wait at until the test opens it.
class gate {
public:
    void open() {
        std::lock_guard<std::mutex> g(m_);
        open_ = true;
        cv_.notify_all();
    }
    // True once open; false after a long timeout (the test has failed then).
    bool pass() {
        std::unique_lock<std::mutex> g(m_);
        return cv_.wait_for(g, 10s, [&] { return open_; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool open_ = false;
};

// Waits cooperatively (polling the hub) until `done` holds, at most a few seconds.
template <class P>
bool eventually(P done) {
    for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;) {
        if (done()) return true;
        green::sleep(1ms);
    }
    return done();
}

struct disk_error : std::runtime_error {
    explicit disk_error(const std::string& m) : std::runtime_error(m), origin(this) {}
    const disk_error* origin;  // where it was made (a copy would keep the original's address)
};

// Collects the hub's error reports for one test.
struct hub_errors {
    std::vector<std::string> reports;
    green::hub::error_handler previous;
    hub_errors() {
        previous = green::get_hub().set_error_handler([this](std::string_view context, std::exception_ptr e) {
            reports.push_back(std::string(context) + " failed with " + green::detail::type_name_of(e));
        });
    }
    ~hub_errors() { green::get_hub().set_error_handler(previous); }
};

}  // namespace

TEST_CASE("values come back intact") {
    green::threadpool pool(2);
    CHECK(pool.spawn([](int a, int b) { return a * b; }, 6, 7).get() == 42);
    CHECK(pool.spawn([](std::string s) { return s + "!"; }, "hello").get() == "hello!");
    CHECK(pool.apply([] { return std::vector<int>{1, 2, 3}; }) == std::vector<int>{1, 2, 3});
    // Move-only values, in and out.
    auto p = pool.apply([](std::unique_ptr<int> x) { return std::make_unique<int>(*x + 1); }, std::make_unique<int>(41));
    REQUIRE(p);
    CHECK(*p == 42);
    // void
    std::atomic<bool> ran{false};
    green::async_result<void> r = pool.spawn([&] { ran = true; });
    r.get();
    CHECK(ran);
    CHECK(r.successful());
    // A returned reference is copied.
    static const std::string constant = "constant";
    std::string copy = pool.apply([]() -> const std::string& { return constant; });
    CHECK(copy == "constant");
    // It ran on another thread.
    CHECK(pool.apply([] { return std::this_thread::get_id(); }) != std::this_thread::get_id());
}

TEST_CASE("exceptions come back intact, and the hub reports them") {
    hub_errors errors;
    green::threadpool pool(2);
    auto r = pool.spawn([]() -> int { throw disk_error("disk on fire"); });
    try {
        r.get();
        FAIL("get() did not raise");
    } catch (const disk_error& e) {
        CHECK(std::string(e.what()) == "disk on fire");
        CHECK(e.origin == &e);  // the very object thrown in the worker, not a copy
    }
    CHECK_FALSE(r.successful());
    CHECK(r.exception() != nullptr);
    // apply raises it where it was called; exceptions that are not std::exceptions too.
    CHECK_THROWS_WITH_AS(pool.apply([] { throw std::out_of_range("index 7"); }), "index 7", std::out_of_range);
    try {
        pool.apply([] { throw 42; });
        FAIL("apply did not raise");
    } catch (int v) {
        CHECK(v == 42);
    }
    // Each failure was also reported once by the hub (gevent does both).
    green::sleep();
    REQUIRE(errors.reports.size() == 3);
    CHECK(errors.reports[0] == "threadpool job failed with disk_error");
    CHECK(errors.reports[1] == "threadpool job failed with std::out_of_range");
    CHECK(errors.reports[2] == "threadpool job failed with int");
}

TEST_CASE("the caller waits cooperatively: other greenlets keep running") {
    green::threadpool pool(1);
    std::atomic<int> ticks{0};
    auto ticker = green::spawn([&] {
        for (int i = 0; i < 3; ++i) {
            green::sleep(1ms);
            ++ticks;
        }
    });
    // The job can only finish once the ticker, a greenlet of this thread, has ticked 3 times:
    // if apply blocked the thread, the job would give up after 10 s and return false.
    bool saw_ticks = pool.apply([&] {
        for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
            if (ticks == 3) return true;
            std::this_thread::sleep_for(1ms);
        }
        return false;
    });
    CHECK(saw_ticks);
    ticker.join();
}

TEST_CASE("maxsize bounds the threads; spawn waits cooperatively for a free slot") {
    green::threadpool pool(3);
    CHECK(pool.maxsize() == 3);
    CHECK(pool.size() == 0);  // threads start lazily

    SUBCASE("three jobs can run at once, never more") {
        std::atomic<int> running{0};
        std::atomic<int> peak{0};
        auto job = [&] {
            int now = ++running;
            for (int p = peak; now > p && !peak.compare_exchange_weak(p, now);) {
            }
            // The first three meet here: they run at the same time.
            for (auto until = std::chrono::steady_clock::now() + 10s; peak < 3 && std::chrono::steady_clock::now() < until;)
                std::this_thread::sleep_for(100us);
            --running;
            return peak.load();
        };
        std::vector<green::async_result<int>> results;
        for (int i = 0; i < 12; ++i) results.push_back(pool.spawn(job));
        for (auto& r : results) CHECK(r.get() == 3);
        CHECK(peak == 3);
        CHECK(pool.size() <= 3);
    }

    SUBCASE("the spawn after maxsize unfinished jobs waits, and lets others run") {
        gate door;
        std::vector<green::async_result<bool>> busy;
        for (int i = 0; i < 3; ++i) busy.push_back(pool.spawn([&] { return door.pass(); }));
        CHECK(pool.pending() == 3);
        bool spawned = false;
        auto spawner = green::spawn([&] {
            auto r = pool.spawn([] { return 4; });
            spawned = true;
            return r.get();
        });
        for (int i = 0; i < 5; ++i) green::sleep(1ms);  // the hub keeps going meanwhile
        CHECK_FALSE(spawned);                           // no slot: every job waits at the door
        door.open();
        CHECK(spawner.get() == 4);
        CHECK(spawned);
        for (auto& r : busy) CHECK(r.get());
    }
}

TEST_CASE("a greenlet killed while waiting for a slot gives its place up") {
    green::threadpool pool(1);
    gate door;
    auto busy = pool.spawn([&] { return door.pass(); });
    std::vector<int> order;
    auto first = green::spawn([&] {
        pool.spawn([] {}).get();
        order.push_back(1);
    });
    auto second = green::spawn([&] {
        pool.spawn([] {}).get();
        order.push_back(2);
    });
    green::sleep();  // both wait for the slot, first in line first
    first.kill();    // while waiting
    CHECK(first.ready());
    door.open();
    CHECK(busy.get());
    second.join();
    CHECK(order == std::vector<int>{2});
    CHECK(pool.join());
    CHECK(pool.pending() == 0);
    CHECK(pool.apply([] { return 9; }) == 9);  // no slot was lost
}

TEST_CASE("a pending job keeps the loop alive; a finished one no longer does") {
    green::threadpool pool(1);
    // Only the job could wake main: no timers, no other greenlets. It comes back through the
    // eventfd, and the wait does not raise loop_exit.
    CHECK(pool.apply([] {
        std::this_thread::sleep_for(30ms);
        return 7;
    }) == 7);

    // Nobody waits for this one, but the loop runs until it is done: wait() is gevent's
    // hub.join().
    std::atomic<bool> finished{false};
    auto r = pool.spawn([&] {
        std::this_thread::sleep_for(30ms);
        finished = true;
    });
    CHECK(green::wait());
    CHECK(finished);
    CHECK(r.ready());

    // With no job left, waiting for nothing is loop_exit again.
    green::event never;
    CHECK_THROWS_AS(never.wait(), green::loop_exit);
}

TEST_CASE("many jobs complete") {
    green::threadpool pool(4);
    std::vector<green::async_result<long>> results;
    for (long i = 0; i < 1000; ++i) results.push_back(pool.spawn([](long x) { return x * x; }, i));
    long sum = 0;
    for (auto& r : results) sum += r.get();
    CHECK(sum == 332'833'500L);  // sum of squares below 1000

    std::vector<int> items(1000);
    std::iota(items.begin(), items.end(), 0);
    std::vector<int> doubled = pool.map([](int x) { return 2 * x; }, items);
    REQUIRE(doubled.size() == 1000);
    for (int i = 0; i < 1000; ++i) CHECK(doubled[i] == 2 * i);
    CHECK(pool.pending() == 0);
    CHECK(pool.size() <= 4);
}

TEST_CASE("map and imap keep the items' order; the first failure in that order is raised") {
    green::threadpool pool(3);
    // Later items finish first.
    auto slow_first = [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
    };
    CHECK(pool.map(slow_first, std::vector<int>{30, 20, 10, 0}) == std::vector<int>{30, 20, 10, 0});
    std::vector<int> seen;
    for (int v : pool.imap(slow_first, std::vector<int>{30, 20, 10, 0, 5})) seen.push_back(v);
    CHECK(seen == std::vector<int>{30, 20, 10, 0, 5});

    hub_errors quiet;
    auto picky = [](int x) {
        if (x % 2) throw std::invalid_argument("odd " + std::to_string(x));
        return x;
    };
    CHECK_THROWS_WITH_AS(pool.map(picky, std::vector<int>{2, 4, 5, 7}), "odd 5", std::invalid_argument);
    seen.clear();
    try {
        for (int v : pool.imap(picky, std::vector<int>{2, 4, 5, 7})) seen.push_back(v);
        FAIL("imap did not raise");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "odd 5");
    }
    CHECK(seen == std::vector<int>{2, 4});
    std::atomic<int> calls{0};
    pool.map([&](int) { ++calls; }, std::vector<int>(10));  // void: just waits
    CHECK(calls == 10);
    CHECK(pool.join());
}

TEST_CASE("run_in_thread uses the hub's own pool") {
    green::threadpool& pool = green::get_hub().threadpool();
    CHECK(&pool == &green::get_hub().threadpool());
    CHECK(pool.maxsize() == 10);
    CHECK(green::run_in_thread([](int x) { return x + 1; }, 41) == 42);
    CHECK(green::run_in_thread([] { return std::this_thread::get_id(); }) != std::this_thread::get_id());
    {
        hub_errors quiet;
        CHECK_THROWS_AS(green::run_in_thread([] { throw std::runtime_error("boom"); }), std::runtime_error);
    }

    // Many greenlets waiting at once, each for its own call.
    std::vector<green::any_task> tasks;
    std::atomic<int> total{0};
    for (int i = 0; i < 30; ++i)
        tasks.push_back(green::spawn([&total, i] { total += green::run_in_thread([i] { return i; }); }));
    green::joinall(tasks);
    CHECK(total == 435);
}

TEST_CASE("a job may use greenlets on its worker thread (a hub of its own)") {
    // Switch-heavy on three threads at once: the ThreadSanitizer build checks that greenlet
    // switches (annotated as TSan fibers) produce no false reports.
    green::threadpool pool(2);
    auto job = [](int n) {
        std::vector<long> shared(8);  // plain memory, shared by this worker's greenlets
        std::vector<green::any_task> tasks;
        for (int t = 0; t < 20; ++t)
            tasks.push_back(green::spawn([&shared, t] {
                for (int i = 0; i < 100; ++i) {
                    shared[t % 8] += i;
                    green::sleep();
                }
            }));
        green::joinall(tasks);
        // Even a pool of its own (the worker's hub's), stopped when this worker exits.
        long nested = green::run_in_thread([n] { return long(n); });
        return std::accumulate(shared.begin(), shared.end(), 0L) + nested;
    };
    bool spinning = true;
    long spins = 0;
    auto spinner = green::spawn([&] {
        while (spinning) {
            ++spins;
            green::sleep();
        }
    });
    std::vector<long> sums = pool.map(job, std::vector<int>{1, 2, 3, 4});
    spinning = false;
    spinner.join();
    CHECK(sums == std::vector<long>{99'001, 99'002, 99'003, 99'004});  // 20 * (0 + ... + 99) + n
    CHECK(spins > 0);
    pool.kill();  // the workers exit: their hubs (and pools) are torn down with them
    CHECK(pool.size() == 0);
}

TEST_CASE("the function and its arguments are destroyed on the hub's thread") {
    struct noted {
        std::thread::id* where;
        explicit noted(std::thread::id* w) : where(w) {}
        noted(const noted&) = default;
        ~noted() { *where = std::this_thread::get_id(); }
    };
    std::thread::id fn_died, arg_died;
    green::threadpool pool(1);
    {
        noted in_fn(&fn_died);
        pool.apply([in_fn](const noted&) { return std::this_thread::get_id(); }, noted(&arg_died));
    }
    CHECK(fn_died == std::this_thread::get_id());
    CHECK(arg_died == std::this_thread::get_id());
}

TEST_CASE("join, kill and the destructor") {
    SUBCASE("join waits for every job, with a timeout") {
        green::threadpool pool(2);
        gate door;
        auto r = pool.spawn([&] { return door.pass(); });
        CHECK_FALSE(pool.join(20ms));
        CHECK(pool.pending() == 1);
        door.open();
        CHECK(pool.join());
        CHECK(r.get());
        CHECK(pool.pending() == 0);
    }

    SUBCASE("kill waits cooperatively for the jobs, then stops the threads") {
        green::threadpool pool(2);
        gate door;
        auto first = pool.spawn([&] { return door.pass(); });
        auto second = pool.spawn([&] { return door.pass(); });
        REQUIRE(eventually([&] { return pool.size() == 2; }));
        bool opened = false;
        green::spawn([&] {
            opened = true;  // runs while kill waits
            door.open();
        });
        pool.kill();
        CHECK(opened);
        CHECK(first.ready());
        CHECK(second.ready());
        CHECK(first.get());
        CHECK(second.get());
        CHECK(pool.size() == 0);
        CHECK(pool.pending() == 0);
        CHECK(pool.apply([] { return 5; }) == 5);  // still usable
    }

    SUBCASE("the destructor waits for the jobs; a greenlet waiting for a slot gets an error") {
        gate door;
        green::async_result<bool> running;
        std::atomic<bool> finished{false};
        std::string slot_error;
        std::optional<green::task<void>> spawner;
        {
            green::threadpool pool(1);
            running = pool.spawn([&] {
                bool ok = door.pass();
                std::this_thread::sleep_for(20ms);
                finished = true;
                return ok;
            });
            spawner = green::spawn([&] {
                try {
                    pool.spawn([] {});
                } catch (const green::error& e) {
                    slot_error = e.what();
                }
            });
            green::sleep();  // the spawner waits for a slot now
            door.open();
        }  // blocks until the running job is over
        CHECK(finished);
        CHECK(running.ready());
        CHECK(running.get());
        spawner->join();
        CHECK(slot_error.find("destroyed while waiting") != std::string::npos);
    }

    SUBCASE("idle workers exit") {
        green::threadpool pool(2, 20ms);
        CHECK(pool.apply([] { return 1; }) == 1);
        CHECK(pool.size() <= 1);  // 0 if it has idled out already
        CHECK(eventually([&] { return pool.size() == 0; }));
        CHECK(pool.apply([] { return 2; }) == 2);  // a new one starts
    }
}

TEST_CASE("teardown: the thread's pools stop when it exits, with jobs in flight") {
    std::atomic<int> ran{0};
    std::atomic<bool> slow_done{false};
    std::atomic<bool> waiter_killed{false};
    std::atomic<bool> slot_waiter_killed{false};
    // Worker threads that ran a job, and those of them whose thread-locals were destroyed: the
    // thread's exit must have joined its pools' workers before it finished.
    std::atomic<int> workers_used{0};
    std::atomic<int> workers_exited{0};
    struct worker_note {
        std::atomic<int>* exited;
        worker_note(std::atomic<int>* used, std::atomic<int>* e) : exited(e) { ++*used; }
        ~worker_note() { ++*exited; }
    };
    auto note_worker = [&] {
        thread_local worker_note note(&workers_used, &workers_exited);
        (void)note;
    };
    std::unique_ptr<green::threadpool> own;  // destroyed after the thread exits (it is stopped then)
    std::thread t([&] {
        // A pool of the thread's own, alive when the thread exits: one job running (until the
        // greenlets below have been killed), and a greenlet waiting for a slot (killed).
        own = std::make_unique<green::threadpool>(1);
        own->spawn([&] {
            note_worker();
            while (!waiter_killed) std::this_thread::sleep_for(1ms);
            std::this_thread::sleep_for(20ms);
            ++ran;
        });
        green::spawn([&] {
            try {
                own->spawn([] {});
            } catch (const green::greenlet_exit&) {
                slot_waiter_killed = true;
                throw;
            }
        });
        // The default pool: a job nobody waits for, still running at thread exit.
        green::get_hub().threadpool().spawn([&] {
            note_worker();
            std::this_thread::sleep_for(50ms);
            slow_done = true;
        });
        // A greenlet waiting in apply when the thread exits: killed, its job still finishes.
        green::spawn([&] {
            try {
                green::run_in_thread([&] {
                    note_worker();
                    std::this_thread::sleep_for(50ms);
                    ++ran;
                });
            } catch (const green::greenlet_exit&) {
                waiter_killed = true;
                throw;
            }
        });
        green::sleep(5ms);  // let the jobs start
    });
    t.join();
    CHECK(slow_done);       // the thread waited for the running jobs
    CHECK(waiter_killed);
    CHECK(slot_waiter_killed);
    CHECK(ran == 2);        // the apply's job and `own`'s
    CHECK(workers_used >= 2);
    CHECK(workers_exited == workers_used);
    CHECK(own->size() == 0);
    CHECK_THROWS_WITH_AS(own->spawn([] {}), doctest::Contains("shut down"), green::error);
    own.reset();  // on another thread: fine, it is detached from its (gone) hub
}

TEST_CASE("a pool is used from its hub's thread only") {
    green::threadpool pool(2);
    std::string spawn_error, apply_error;
    std::thread other([&] {
        try {
            pool.spawn([] { return 1; });
        } catch (const green::error& e) {
            spawn_error = e.what();
        }
        try {
            pool.apply([] { return 1; });
        } catch (const green::error& e) {
            apply_error = e.what();
        }
    });
    other.join();
    CHECK(spawn_error.find("another thread") != std::string::npos);
    CHECK(spawn_error.find("InvalidThreadUseError") != std::string::npos);
    CHECK(apply_error.find("another thread") != std::string::npos);

    // Except apply and map from one of its own workers, which run inline (as in gevent).
    auto nested = pool.apply([&] {
        auto id = std::this_thread::get_id();
        bool same_thread = pool.apply([&] { return std::this_thread::get_id() == id; });
        std::vector<int> m = pool.map([](int x) { return x + 1; }, std::vector<int>{1, 2});
        return same_thread && m == std::vector<int>{2, 3};
    });
    CHECK(nested);
}

TEST_CASE("blocking calls from the hub itself are errors") {
    green::threadpool pool(1);
    std::string apply_error;
    green::get_hub().run_callback([&] {
        try {
            pool.apply([] { return 1; });
        } catch (const green::blocking_switch_error& e) {
            apply_error = e.what();
        }
    });
    green::sleep();
    CHECK(apply_error.find("threadpool::apply") != std::string::npos);
    // spawn does not wait while a slot is free, so it works there.
    green::async_result<int> r;
    green::get_hub().run_callback([&] { r = pool.spawn([] { return 3; }); });
    green::sleep();
    CHECK(r.get() == 3);
}

TEST_CASE("bad arguments") {
    CHECK_THROWS_AS(green::threadpool(0), green::error);
    CHECK_THROWS_AS(green::threadpool(1, -1s), green::error);
}
