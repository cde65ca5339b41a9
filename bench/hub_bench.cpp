// The hub against Boost.Fiber, side by side in one run: yielding, spawning and joining,
// timers, and an event hand-off. Both run single-threaded with their defaults: green's hub
// (pooled, guard-paged 256 KiB stacks); Boost.Fiber's round_robin scheduler and fixedsize_stack.
//
//     ./build/bench/hub_bench [scale]        # scale 1 by default; 0.1 for a quick look
//
// The pairs, each as green / Boost.Fiber:
//   1. yield round trip: two tasks taking turns with green::sleep(), against two fibers taking
//      turns with boost::this_fiber::yield();
//   2. spawn + join of an empty task, one at a time, and 100k spawned then joined together;
//   3. 100k timers of a random 0-100 ms pending at once, in CPU time (CLOCK_PROCESS_CPUTIME_ID:
//      the time spent asleep is not counted): spawn_later of an empty task (a timer, no stack
//      while it waits), and 100k tasks each sleeping (a stack each), against fibers sleeping;
//   4. an event ping-pong between two tasks: green::event against a Boost.Fiber event made of
//      boost::fibers::mutex + condition_variable + a flag, the usual way to write one.
// std::thread joins 2 (create + join) and 4 (std::mutex + std::condition_variable), as what
// the same work costs with threads. Each result is also emitted as an "@" line for
// scripts/bench.sh.
#include "measure.hpp"

#include <green/event.hpp>
#include <green/hub.hpp>

#include <boost/context/stack_traits.hpp>
#include <boost/fiber/all.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace fibers = boost::fibers;
using namespace std::chrono_literals;

namespace {

// A gevent-style event for Boost.Fiber: a flag under a fiber mutex, with a condition variable.
class fiber_event {
public:
    void set() {
        std::lock_guard<fibers::mutex> hold(mutex_);
        flag_ = true;
        changed_.notify_all();
    }
    void clear() {
        std::lock_guard<fibers::mutex> hold(mutex_);
        flag_ = false;
    }
    void wait() {
        std::unique_lock<fibers::mutex> hold(mutex_);
        changed_.wait(hold, [this] { return flag_; });
    }

private:
    fibers::mutex mutex_;
    fibers::condition_variable changed_;
    bool flag_ = false;
};

// The same event for threads.
class thread_event {
public:
    void set() {
        std::lock_guard<std::mutex> hold(mutex_);
        flag_ = true;
        changed_.notify_all();
    }
    void clear() {
        std::lock_guard<std::mutex> hold(mutex_);
        flag_ = false;
    }
    void wait() {
        std::unique_lock<std::mutex> hold(mutex_);
        changed_.wait(hold, [this] { return flag_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool flag_ = false;
};

// The event ping-pong of measure 4, for any event type and any way to run two tasks.
template <class Event, class Run>
void ping_pong(std::size_t count, Run&& run_both) {
    Event ping, pong;
    run_both(
        [&] {
            for (std::size_t i = 0; i < count; ++i) {
                ping.set();
                pong.wait();
                pong.clear();
            }
        },
        [&] {
            for (std::size_t i = 0; i < count; ++i) {
                ping.wait();
                ping.clear();
                pong.set();
            }
        });
}

std::size_t scaled(double scale, std::size_t n) {
    const auto s = static_cast<std::size_t>(static_cast<double>(n) * scale);
    return s ? s : 1;
}

void header(const char* title) { std::printf("\n%s\n", title); }

}  // namespace

int main(int argc, char** argv) {
    const double scale = argc > 1 ? std::strtod(argv[1], nullptr) : 1.0;
    const int repetitions = 7;
    std::printf("green hub vs Boost.Fiber %d.%d (round_robin, fixedsize_stack of %zu KiB); median of %d runs\n",
                BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, boost::context::stack_traits::default_size() / 1024,
                repetitions);

    // ---- 1. yield round trip: A yields, B runs and yields, A runs again -------------------
    {
        const std::size_t n = scaled(scale, 2'000'000);
        auto green_yield = bench::measure(n, repetitions, [](std::size_t count) {
            auto turn = [count] {
                for (std::size_t i = 0; i < count; ++i) green::sleep();
            };
            green::joinall({green::spawn(turn), green::spawn(turn)});
        });
        auto fiber_yield = bench::measure(n, repetitions, [](std::size_t count) {
            auto turn = [count] {
                for (std::size_t i = 0; i < count; ++i) boost::this_fiber::yield();
            };
            fibers::fiber a(turn), b(turn);
            a.join();
            b.join();
        });
        header("1. yield round trip between two tasks (ns per round: each side yields once)");
        bench::print("green: green::sleep()", green_yield);
        bench::print("Boost.Fiber: this_fiber::yield()", fiber_yield);
        bench::print_comparison("green / Boost.Fiber", green_yield, fiber_yield);
        bench::emit("sleep_rt", "green", green_yield);
        bench::emit("sleep_rt", "boost-fiber", fiber_yield);
    }

    // ---- 2. spawn + join ------------------------------------------------------------------
    {
        const std::size_t n = scaled(scale, 1'000'000);
        auto green_one = bench::measure(n, repetitions, [](std::size_t count) {
            for (std::size_t i = 0; i < count; ++i) green::spawn([] {}).join();
        });
        auto fiber_one = bench::measure(n, repetitions, [](std::size_t count) {
            for (std::size_t i = 0; i < count; ++i) fibers::fiber([] {}).join();
        });
        auto thread_one = bench::measure(scaled(scale, 20'000), repetitions, [](std::size_t count) {
            for (std::size_t i = 0; i < count; ++i) std::thread([] {}).join();
        });
        const std::size_t batch = scaled(scale, 100'000);
        auto green_batch = bench::measure(batch, repetitions, [](std::size_t count) {
            std::vector<green::any_task> tasks;
            tasks.reserve(count);
            for (std::size_t i = 0; i < count; ++i) tasks.push_back(green::spawn([] {}));
            green::joinall(tasks);
        });
        auto fiber_batch = bench::measure(batch, repetitions, [](std::size_t count) {
            std::vector<fibers::fiber> all;
            all.reserve(count);
            for (std::size_t i = 0; i < count; ++i) all.emplace_back([] {});
            for (auto& f : all) f.join();
        });
        header("2. spawn + join of an empty task (ns per task)");
        bench::print("green: spawn().join(), one at a time", green_one);
        bench::print("Boost.Fiber: fiber().join(), one at a time", fiber_one);
        bench::print("std::thread: thread().join(), one at a time", thread_one);
        bench::print_comparison("green / Boost.Fiber", green_one, fiber_one);
        std::printf("  %zu at once:\n", batch);
        bench::print("green: spawn all, joinall", green_batch);
        bench::print("Boost.Fiber: construct all, join each", fiber_batch);
        bench::print_comparison("green / Boost.Fiber", green_batch, fiber_batch);
        bench::emit("spawn_join_one", "green", green_one);
        bench::emit("spawn_join_one", "boost-fiber", fiber_one);
        bench::emit("spawn_join_one", "std-thread", thread_one);
        bench::emit("spawn_join_batch", "green", green_batch);
        bench::emit("spawn_join_batch", "boost-fiber", fiber_batch);
    }

    // ---- 3. timers: CPU time of 100k pending timers ----------------------------------------
    {
        const std::size_t n = scaled(scale, 100'000);
        std::vector<std::chrono::microseconds> delays(n);
        std::mt19937 random(42);
        std::uniform_int_distribution<int> up_to_100ms(0, 100'000);
        for (auto& d : delays) d = std::chrono::microseconds(up_to_100ms(random));
        const int runs = 5;

        // gevent's spawn_later: a timer that starts a task. The task gets a stack only when it
        // starts, and gives it back at once, so this is the timer's cost, not a stack's.
        auto green_timers = bench::measure(
            n, runs,
            [&](std::size_t count) {
                std::vector<green::any_task> tasks;
                tasks.reserve(count);
                for (std::size_t i = 0; i < count; ++i) tasks.push_back(green::spawn_later(delays[i], [] {}));
                green::joinall(tasks);
            },
            CLOCK_PROCESS_CPUTIME_ID);
        // The same timers, each slept on by a task of its own: now every task holds a stack
        // while it waits, and on this VM mapping and first touching 100k stacks is most of it.
        auto green_sleepers = bench::measure(
            n, runs,
            [&](std::size_t count) {
                std::vector<green::any_task> tasks;
                tasks.reserve(count);
                for (std::size_t i = 0; i < count; ++i)
                    tasks.push_back(green::spawn([d = delays[i]] { green::sleep(d); }));
                green::joinall(tasks);
            },
            CLOCK_PROCESS_CPUTIME_ID);
        // Boost.Fiber has no timer without a fiber: each sleep_for holds a fiber and its stack.
        auto fiber_sleepers = bench::measure(
            n, runs,
            [&](std::size_t count) {
                std::vector<fibers::fiber> all;
                all.reserve(count);
                for (std::size_t i = 0; i < count; ++i)
                    all.emplace_back([d = delays[i]] { boost::this_fiber::sleep_for(d); });
                for (auto& f : all) f.join();
            },
            CLOCK_PROCESS_CPUTIME_ID);
        std::printf("\n3. %zu timers of a random 0-100 ms, all pending at once (CPU ns per timer, median of %d)\n", n,
                    runs);
        bench::print("green: spawn_later(d, empty task), joinall", green_timers);
        bench::print("green: spawn(sleep(d)), joinall", green_sleepers);
        bench::print("Boost.Fiber: fiber(sleep_for(d)), join", fiber_sleepers);
        bench::print_comparison("green / Boost.Fiber, per timer", green_timers, fiber_sleepers);
        bench::print_comparison("green / Boost.Fiber, per sleeping task", green_sleepers, fiber_sleepers);
        bench::emit("timers", "green", green_timers);
        bench::emit("timers", "boost-fiber", fiber_sleepers);
        bench::emit("sleeping_tasks", "green", green_sleepers);
        bench::emit("sleeping_tasks", "boost-fiber", fiber_sleepers);
    }

    // ---- 4. event ping-pong ---------------------------------------------------------------
    {
        const std::size_t n = scaled(scale, 1'000'000);
        auto green_events = bench::measure(n, repetitions, [](std::size_t count) {
            ping_pong<green::event>(count, [](auto a, auto b) { green::joinall({green::spawn(a), green::spawn(b)}); });
        });
        auto fiber_events = bench::measure(n, repetitions, [](std::size_t count) {
            ping_pong<fiber_event>(count, [](auto a, auto b) {
                fibers::fiber x(a), y(b);
                x.join();
                y.join();
            });
        });
        auto thread_events = bench::measure(scaled(scale, 50'000), repetitions, [](std::size_t count) {
            ping_pong<thread_event>(count, [](auto a, auto b) {
                std::thread x(a), y(b);
                x.join();
                y.join();
            });
        });
        header("4. event ping-pong between two tasks (ns per round trip: set, wake, set back, wake)");
        bench::print("green: green::event", green_events);
        bench::print("Boost.Fiber: mutex + condition_variable", fiber_events);
        bench::print("std::thread: mutex + condition_variable", thread_events);
        bench::print_comparison("green / Boost.Fiber", green_events, fiber_events);
        bench::emit("event_handoff", "green", green_events);
        bench::emit("event_handoff", "boost-fiber", fiber_events);
        bench::emit("event_handoff", "std-thread", thread_events);
    }
}
