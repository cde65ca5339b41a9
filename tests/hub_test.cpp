// The hub: scheduling order, fairness, loop_exit, blocking in the hub, error reporting, kills,
// and what happens to tasks when their thread exits.
#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/timeout.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <malloc.h>
#include <unistd.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct counted {
    static inline std::atomic<int> alive{0};
    counted() { ++alive; }
    counted(const counted&) { ++alive; }
    ~counted() { --alive; }
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Collects what the hub reports instead of printing it.
struct hub_reports {
    std::vector<std::string> lines;
    green::hub::error_handler previous;
    hub_reports() {
        previous = green::get_hub().set_error_handler([this](std::string_view context, std::exception_ptr e) {
            lines.push_back(std::string(context) + " failed with " + green::detail::type_name_of(e));
        });
    }
    ~hub_reports() { green::get_hub().set_error_handler(previous); }
};

}  // namespace

TEST_CASE("spawn queues the start; nothing runs until the spawner waits") {
    std::vector<std::string> trace;
    auto t = green::spawn([&] { trace.push_back("task"); });
    trace.push_back("spawned");
    t.join();
    CHECK(trace == std::vector<std::string>{"spawned", "task"});
}

TEST_CASE("tasks spawned by a task run after those already queued") {
    std::vector<std::string> trace;
    auto parent = green::spawn([&] {
        trace.push_back("parent");
        green::spawn([&] { trace.push_back("child"); });
    });
    auto sibling = green::spawn([&] { trace.push_back("sibling"); });
    green::joinall({parent, sibling});
    green::sleep();
    CHECK(trace == std::vector<std::string>{"parent", "sibling", "child"});
}

TEST_CASE("a sleep() spinner does not starve a due timer") {
    std::atomic<bool> stop{false};
    long spins = 0;
    auto spinner = green::spawn([&] {
        const auto give_up = clock_type::now() + 3s;  // a starved timer would otherwise hang the test
        while (!stop && clock_type::now() < give_up) {
            ++spins;
            green::sleep();
        }
    });
    green::sleep();  // the spinner is running now
    const auto start = clock_type::now();
    green::sleep(20ms);  // main's timer, due while the spinner keeps the run queue busy
    const auto waited = clock_type::now() - start;
    const long spins_when_woken = spins;
    stop = true;
    spinner.join();
    CHECK(spins_when_woken > 0);
    CHECK(waited < 1s);  // it fires within a switch interval of its deadline, not after the spinner
}

TEST_CASE("the switch interval is adjustable") {
    auto& hub = green::get_hub();
    auto previous = hub.switch_interval();
    hub.set_switch_interval(5ms);
    CHECK(hub.switch_interval().ns == std::chrono::nanoseconds(5ms));
    hub.set_switch_interval(previous);
}

TEST_CASE("loop_exit: main waits on an event nobody can set, and the hub stays usable") {
    green::event never;
    try {
        never.wait();
        FAIL("wait returned");
    } catch (const green::loop_exit& e) {
        const std::string what = e.what();
        CHECK(first_line(what) == "This operation would block forever");
        CHECK(what.find("the main greenlet waits in event::wait") != std::string::npos);
    }
    CHECK(green::spawn([] { return 7; }).get() == 7);
}

TEST_CASE("loop_exit names what the other greenlets are blocked in") {
    green::event never;
    auto stuck = green::spawn([&] { never.wait(); });
    stuck.set_name("stuck");
    try {
        stuck.join();
        FAIL("join returned");
    } catch (const green::loop_exit& e) {
        const std::string what = e.what();
        CHECK(what.find("'stuck'") != std::string::npos);
        CHECK(what.find("task::join") != std::string::npos);
    }
    CHECK_FALSE(stuck.dead());
    stuck.kill();
    CHECK(stuck.dead());
}

TEST_CASE("a pending timer keeps the loop alive: no loop_exit") {
    green::event never;
    CHECK_FALSE(never.wait(30ms));
}

TEST_CASE("blocking inside the hub raises blocking_switch_error") {
    std::string message;
    green::get_hub().run_callback([&] {
        try {
            green::sleep(10ms);
        } catch (const green::blocking_switch_error& e) {
            message = e.what();
        }
    });
    green::sleep(20ms);
    CHECK(message.rfind("Impossible to call blocking function in the event loop callback", 0) == 0);
}

TEST_CASE("a rawlink callback runs in the hub: blocking there is reported") {
    hub_reports reports;
    auto t = green::spawn([] {});
    t.rawlink([](green::task<void>) { green::sleep(10ms); });
    t.join();
    green::sleep(20ms);
    REQUIRE(reports.lines.size() == 1);
    CHECK(reports.lines[0].find("blocking_switch_error") != std::string::npos);
}

TEST_CASE("a failing task is reported once, not raised in the joiner; get() rethrows") {
    hub_reports reports;
    auto t = green::spawn([]() -> int { throw std::runtime_error("bad thing"); });
    t.set_name("worker");
    CHECK(t.join());
    CHECK(t.ready());
    CHECK_FALSE(t.successful());
    CHECK_THROWS_WITH_AS(t.get(), "bad thing", std::runtime_error);
    REQUIRE(reports.lines.size() == 1);
    CHECK(reports.lines[0] == "worker failed with std::runtime_error");
}

TEST_CASE("the default error report is one line on stderr") {
    std::fflush(stderr);
    std::FILE* file = std::tmpfile();
    const int saved = dup(STDERR_FILENO);
    dup2(fileno(file), STDERR_FILENO);
    auto t = green::spawn([]() -> int { throw std::runtime_error("boom"); });
    t.set_name("noisy");
    t.join();
    std::fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    std::rewind(file);
    std::string text;
    for (int ch; (ch = std::fgetc(file)) != EOF;) text += static_cast<char>(ch);
    std::fclose(file);
    CHECK(text == "noisy failed with std::runtime_error: boom\n");
}

TEST_CASE("killing a task blocked in sleep, an event or a join unwinds it") {
    counted::alive = 0;
    green::event never;
    auto blocker = green::spawn([] { green::sleep(1h); });
    std::vector<green::any_task> victims{
        green::spawn([] {
            counted c;
            green::sleep(1h);
        }),
        green::spawn([&] {
            counted c;
            never.wait();
        }),
        green::spawn([&] {
            counted c;
            blocker.join();
        }),
    };
    green::sleep();
    CHECK(counted::alive == 3);
    green::killall(victims);
    CHECK(counted::alive == 0);
    for (auto& v : victims) {
        CHECK(v.dead());
        CHECK(v.successful());  // greenlet_exit counts as success
    }
    CHECK_FALSE(never.has_links());  // the killed waiter left the event
    blocker.kill();
}

TEST_CASE("a kill with a custom exception is a failure") {
    hub_reports reports;
    auto t = green::spawn([] { green::sleep(1h); });
    green::sleep();
    t.kill(std::logic_error("stop"));
    CHECK(t.dead());
    CHECK_FALSE(t.successful());
    CHECK_THROWS_AS(t.get(), std::logic_error);
}

TEST_CASE("kill before start: the function never runs, links still fire") {
    bool ran = false, linked = false;
    auto t = green::spawn([&] { ran = true; });
    t.link([&](green::task<void>) { linked = true; });
    t.kill();
    green::sleep();
    green::sleep();
    CHECK_FALSE(ran);
    CHECK(linked);
    CHECK(t.dead());
}

TEST_CASE("a task can kill itself: the exception is raised right there") {
    green::task<void>* self = nullptr;
    bool after = false;
    auto t = green::spawn([&] {
        self->kill();
        after = true;
    });
    self = &t;
    t.join();
    CHECK_FALSE(after);
    CHECK(t.successful());
}

TEST_CASE("links run in registration order, joiners included") {
    std::vector<int> order;
    auto t = green::spawn([] {});
    t.rawlink([&](green::task<void>) { order.push_back(1); });
    t.link([&](green::task<void>) { order.push_back(2); });
    t.join();
    order.push_back(3);
    CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("unlink removes a link before it fires") {
    bool fired = false;
    auto t = green::spawn([] {});
    auto id = t.link([&](green::task<void>) { fired = true; });
    CHECK(t.unlink(id));
    t.join();
    green::sleep();
    CHECK_FALSE(fired);
}

TEST_CASE("get with a timeout raises timeout_error; get(0s) never blocks") {
    auto t = green::spawn([] {
        green::sleep(1h);
        return 1;
    });
    CHECK_THROWS_AS(t.get(10ms), green::timeout_error);
    CHECK_THROWS_AS(t.get(0s), green::timeout_error);
    CHECK_FALSE(t.join(0s));
    t.kill();
}

TEST_CASE("a negative timeout is an error") {
    CHECK_THROWS_AS(green::sleep(-1ms), green::error);
    auto t = green::spawn([] {});
    CHECK_THROWS_AS(t.join(-1s), green::error);
    t.join();
}

TEST_CASE("100,000 tasks run and finish") {
    // Under ASan each parked greenlet also holds a fake-stack mapping (~11 MB) when
    // detect_stack_use_after_return is on, and 100k of them exceed vm.max_map_count.
#if defined(__SANITIZE_ADDRESS__)
    const int n = 10'000;
#else
    const int n = 100'000;
#endif
    long sum = 0;
    std::vector<green::any_task> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i) tasks.push_back(green::spawn([&sum, i] {
        green::sleep();
        sum += i;
    }));
    auto done = green::joinall(tasks);
    CHECK(done.size() == static_cast<std::size_t>(n));
    CHECK(sum == static_cast<long>(n) * (n - 1) / 2);
}

TEST_CASE("joinall returns the tasks done before it first, then in the order they finished") {
    std::vector<std::string> linked;
    auto named = [&](const char* name, green::duration nap) {
        auto t = green::spawn([nap] { green::sleep(nap); });
        t.rawlink([&linked, name](green::task<void>) { linked.push_back(name); });
        return green::any_task(t);
    };
    auto done_b = named("done-b", 0ms);
    auto done_a = named("done-a", 0ms);
    green::sleep(5ms);  // both finished, their links fired
    REQUIRE(done_a.ready());
    auto slow = named("slow", 60ms);
    auto fast = named("fast", 10ms);
    auto middle = named("middle", 30ms);
    const std::vector<green::any_task> given{slow, done_a, fast, done_b, middle};
    auto done = green::joinall(given);
    std::vector<green::any_task> expected{done_a, done_b, fast, middle, slow};
    REQUIRE(done.size() == expected.size());
    for (std::size_t i = 0; i < done.size(); ++i) CHECK(done[i] == expected[i]);
    // Every returned task's links have fired.
    CHECK(linked == std::vector<std::string>{"done-b", "done-a", "fast", "middle", "slow"});

    // At the timeout: those done by then, in the same order; the others go on.
    auto late = named("late", 200ms);
    auto early = named("early", 10ms);
    done = green::joinall({late, done_a, early}, {.timeout = 50ms});
    REQUIRE(done.size() == 2);
    CHECK(done[0] == done_a);
    CHECK(done[1] == early);
    CHECK_FALSE(late.ready());
    late.kill();
}

TEST_CASE("iwait yields in completion order and stops at the timeout") {
    auto slow = green::spawn([] { green::sleep(60ms); });
    auto fast = green::spawn([] { green::sleep(10ms); });
    green::event never;
    std::vector<green::waitable> order;
    for (const auto& w : green::iwait({slow, fast, never}, {.timeout = 200ms})) order.push_back(w);
    REQUIRE(order.size() == 2);
    CHECK(order[0] == green::waitable(fast));
    CHECK(order[1] == green::waitable(slow));
}

TEST_CASE("hub::join waits until the loop has nothing left to do") {
    int finished = 0;
    for (int i = 0; i < 3; ++i) green::spawn([&, i] {
        green::sleep(std::chrono::milliseconds(5 * i));
        ++finished;
    });
    CHECK(green::wait());
    CHECK(finished == 3);
    auto sleeper = green::spawn([] { green::sleep(1h); });
    CHECK_FALSE(green::get_hub().join(20ms));
    sleeper.kill();
}

TEST_CASE("at thread exit the hub kills what still runs and every stack unwinds") {
    counted::alive = 0;
    bool got_exit = false;
    std::thread t([&] {
        green::spawn([&] {
            counted c;
            try {
                green::sleep(1h);
            } catch (const green::greenlet_exit&) {
                got_exit = true;
                throw;
            }
        });
        green::spawn([] {
            counted c;
            green::event never;
            never.wait();
        });
        green::spawn([] { counted c; });  // never started: never runs
        green::sleep();
        CHECK(counted::alive == 2);
    });
    t.join();
    CHECK(counted::alive == 0);
    CHECK(got_exit);
}

TEST_CASE("idle() waits until nothing else is ready; pending timers do not count") {
    std::vector<std::string> trace;
    auto busy = green::spawn([&] {
        for (int i = 0; i < 3; ++i) {
            trace.push_back("busy");
            green::sleep();
        }
    });
    auto later = green::spawn([&] {
        green::sleep(1h);  // armed, not due: does not keep idle() waiting
    });
    green::idle();
    trace.push_back("idle");
    CHECK(trace == std::vector<std::string>{"busy", "busy", "busy", "idle"});
    later.kill();
    busy.join();
}

TEST_CASE("a greenlet on the shared stack cannot wait in the hub, and says so") {
    std::string slept, waited;
    green::greenlet g(
        [&] {
            try {
                green::sleep(1ms);
            } catch (const green::error& e) {
                slept = e.what();
            }
            try {
                green::event never;
                never.wait();
            } catch (const green::error& e) {
                waited = e.what();
            }
        },
        {.policy = green::stack_policy::shared});
    g.switch_to();
    CHECK(g.dead());
    CHECK(slept == "sleep: a greenlet on a shared stack cannot wait in the hub (give it stack_policy::dedicated)");
    CHECK(waited.find("a greenlet on a shared stack cannot wait in the hub") != std::string::npos);
}

// The first task of a thread is allocated before the thread has green state (the task's
// constructor creates it), so before it has an object cache: that block, freed into the cache
// when the task is done, must be as big as any object of its size class, which the cache then
// hands it to. It used to be allocated at the task's exact size, and the next, larger task of
// that class wrote past its end into the heap (hub_bench overwrote the thread's current greenlet).
TEST_CASE("a block allocated before the thread's object cache is cached at its class's size") {
    std::size_t usable = 0;
    void* first = nullptr;
    void* reused = nullptr;
    std::thread([&] {
        first = green::detail::allocate_small(65);   // no green state on this thread yet
        (void)green::getcurrent();                    // now there is, and a cache
        green::detail::free_small(first, 65);         // filed in the 65-128 byte class
        reused = green::detail::allocate_small(128);  // the same class: that block again
        usable = malloc_usable_size(reused);
        green::detail::free_small(reused, 128);
    }).join();
    CHECK(usable >= 128);
}
