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
//   3. 100k tasks each sleeping a random 0-100 ms, in CPU time (CLOCK_PROCESS_CPUTIME_ID: the
//      time spent asleep is not counted), then 100k tasks alive at once without a timer (each
//      yields once, behind all the others); the difference is what one timer costs;
//   4. an event ping-pong between two tasks: green::event against a Boost.Fiber event made of
//      boost::fibers::mutex + condition_variable + a flag, the usual way to write one.
#include "measure.hpp"

#include <green/event.hpp>
#include <green/hub.hpp>

#include <boost/context/stack_traits.hpp>
#include <boost/fiber/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
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
        bench::print_comparison("green / Boost.Fiber", green_one, fiber_one);
        std::printf("  %zu at once:\n", batch);
        bench::print("green: spawn all, joinall", green_batch);
        bench::print("Boost.Fiber: construct all, join each", fiber_batch);
        bench::print_comparison("green / Boost.Fiber", green_batch, fiber_batch);
    }

    // ---- 3. timers: CPU time of many sleeping tasks ---------------------------------------
    {
        const std::size_t n = scaled(scale, 100'000);
        std::vector<std::chrono::microseconds> delays(n);
        std::mt19937 random(42);
        std::uniform_int_distribution<int> up_to_100ms(0, 100'000);
        for (auto& d : delays) d = std::chrono::microseconds(up_to_100ms(random));
        const int runs = 5;

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
        // The baseline: as many tasks alive at once (each parks once, behind all the others),
        // with no timer. Most of a parked task's cost is its stack, not its timer.
        auto green_parked = bench::measure(
            n, runs,
            [&](std::size_t count) {
                std::vector<green::any_task> tasks;
                tasks.reserve(count);
                for (std::size_t i = 0; i < count; ++i) tasks.push_back(green::spawn([] { green::sleep(); }));
                green::joinall(tasks);
            },
            CLOCK_PROCESS_CPUTIME_ID);
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
        auto fiber_parked = bench::measure(
            n, runs,
            [&](std::size_t count) {
                std::vector<fibers::fiber> all;
                all.reserve(count);
                for (std::size_t i = 0; i < count; ++i) all.emplace_back([] { boost::this_fiber::yield(); });
                for (auto& f : all) f.join();
            },
            CLOCK_PROCESS_CPUTIME_ID);
        // What the timer adds: the sleeping run less the parked one (medians; min and max are
        // the two runs' extremes subtracted, so they only bound it roughly).
        auto timer_part = [](const bench::result& sleeping, const bench::result& parked) {
            return bench::result{sleeping.median - parked.median, sleeping.min - parked.max, sleeping.max - parked.min};
        };
        const auto green_timer = timer_part(green_sleepers, green_parked);
        const auto fiber_timer = timer_part(fiber_sleepers, fiber_parked);
        std::printf("\n3. %zu tasks each sleeping a random 0-100 ms (CPU ns per task, median of %d)\n", n, runs);
        bench::print("green: spawn, sleep(d), joinall", green_sleepers);
        bench::print("green: spawn, sleep() once, joinall", green_parked);
        bench::print("green: one timer (the difference)", green_timer);
        bench::print("Boost.Fiber: fiber, sleep_for(d), join", fiber_sleepers);
        bench::print("Boost.Fiber: fiber, yield() once, join", fiber_parked);
        bench::print("Boost.Fiber: one timer (the difference)", fiber_timer);
        bench::print_comparison("green / Boost.Fiber, per sleeping task", green_sleepers, fiber_sleepers);
        bench::print_comparison("green / Boost.Fiber, per timer", green_timer, fiber_timer);
    }

    // ---- 4. event ping-pong ---------------------------------------------------------------
    {
        const std::size_t n = scaled(scale, 1'000'000);
        auto green_events = bench::measure(n, repetitions, [](std::size_t count) {
            green::event ping, pong;
            auto a = green::spawn([&] {
                for (std::size_t i = 0; i < count; ++i) {
                    ping.set();
                    pong.wait();
                    pong.clear();
                }
            });
            auto b = green::spawn([&] {
                for (std::size_t i = 0; i < count; ++i) {
                    ping.wait();
                    ping.clear();
                    pong.set();
                }
            });
            green::joinall({a, b});
        });
        auto fiber_events = bench::measure(n, repetitions, [](std::size_t count) {
            fiber_event ping, pong;
            fibers::fiber a([&] {
                for (std::size_t i = 0; i < count; ++i) {
                    ping.set();
                    pong.wait();
                    pong.clear();
                }
            });
            fibers::fiber b([&] {
                for (std::size_t i = 0; i < count; ++i) {
                    ping.wait();
                    ping.clear();
                    pong.set();
                }
            });
            a.join();
            b.join();
        });
        header("4. event ping-pong between two tasks (ns per round trip: set, wake, set back, wake)");
        bench::print("green: green::event", green_events);
        bench::print("Boost.Fiber: mutex + condition_variable", fiber_events);
        bench::print_comparison("green / Boost.Fiber", green_events, fiber_events);
    }
}
