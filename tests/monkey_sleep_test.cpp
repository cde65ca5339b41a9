// The sleep family after patch_all(): sleep, usleep, nanosleep and clock_nanosleep wait on a
// hub timer in a greenlet, and are libc's own everywhere else.
#include "monkey_support.hpp"

#include <green/timeout.hpp>

#include <atomic>
#include <climits>
#include <csignal>
#include <pthread.h>
#include <limits>
#include <string>
#include <time.h>
#include <tuple>
#include <vector>

using namespace monkey_test;

namespace {

timespec timespec_ms(long ms) { return timespec{ms / 1000, (ms % 1000) * 1'000'000}; }

double seconds(const timespec& ts) { return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9; }

// A SIGUSR1 handler without SA_RESTART, so that a blocking sleep in libc is interrupted.
struct interrupting_signal {
    struct sigaction previous {};
    interrupting_signal() {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        REQUIRE(sigaction(SIGUSR1, &sa, &previous) == 0);
    }
    ~interrupting_signal() { sigaction(SIGUSR1, &previous, nullptr); }
};

// Runs `call` on a std::thread (no hub: libc's behaviour) and interrupts it with SIGUSR1 after
// `after`; returns what call returned.
template <class F>
auto interrupted_in_thread(F call, std::chrono::milliseconds after) {
    interrupting_signal handler;
    std::optional<decltype(call())> result;
    std::atomic<bool> started{false};
    std::thread worker([&] {
        started = true;
        result.emplace(call());
    });
    while (!started) std::this_thread::yield();
    std::this_thread::sleep_for(after);
    pthread_kill(worker.native_handle(), SIGUSR1);
    worker.join();
    return *result;
}

}  // namespace

TEST_CASE("sleep(1) in two greenlets: about 1 s in all, not 2") {
    green::monkey::patch_all();
    REQUIRE(green::monkey::is_patched(green::monkey::patch::time));
    const auto start = clock_type::now();
    auto a = green::spawn([] { return ::sleep(1); });
    auto b = green::spawn([] { return ::sleep(1); });
    CHECK(a.get() == 0u);
    CHECK(b.get() == 0u);
    const double elapsed = seconds_since(start);
    CHECK(elapsed >= 0.95);
    CHECK(elapsed < 1.6);
}

TEST_CASE("usleep, nanosleep and clock_nanosleep interleave greenlets by their length") {
    green::monkey::patch_all();
    std::vector<std::string> trace;
    const auto start = clock_type::now();
    auto by_usleep = green::spawn([&] {
        trace.push_back("usleep 150 ms");
        CHECK(::usleep(150'000) == 0);
        trace.push_back("usleep done");
    });
    auto by_nanosleep = green::spawn([&] {
        trace.push_back("nanosleep 50 ms");
        const timespec req = timespec_ms(50);
        CHECK(::nanosleep(&req, nullptr) == 0);
        trace.push_back("nanosleep done");
    });
    auto by_clock = green::spawn([&] {
        trace.push_back("clock_nanosleep 100 ms");
        const timespec req = timespec_ms(100);
        CHECK(::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr) == 0);
        trace.push_back("clock_nanosleep done");
    });
    green::joinall({by_usleep, by_nanosleep, by_clock});
    CHECK(trace == std::vector<std::string>{"usleep 150 ms", "nanosleep 50 ms", "clock_nanosleep 100 ms",
                                            "nanosleep done", "clock_nanosleep done", "usleep done"});
    const double elapsed = seconds_since(start);
    CHECK(elapsed >= 0.14);
    CHECK(elapsed < 0.28);  // the longest, not the sum (0.3 s)
}

TEST_CASE("zero-length sleeps yield: round robin between greenlets") {
    green::monkey::patch_all();
    std::vector<std::string> trace;
    auto worker = [&](std::string name, int how) {
        for (int i = 0; i < 2; ++i) {
            trace.push_back(name + std::to_string(i));
            const timespec zero{0, 0};
            if (how == 0) ::sleep(0);
            if (how == 1) ::usleep(0);
            if (how == 2) ::nanosleep(&zero, nullptr);
            if (how == 3) ::clock_nanosleep(CLOCK_MONOTONIC, 0, &zero, nullptr);
        }
    };
    green::joinall({green::spawn(worker, "sleep", 0), green::spawn(worker, "usleep", 1),
                    green::spawn(worker, "nanosleep", 2), green::spawn(worker, "clock", 3)});
    CHECK(trace == std::vector<std::string>{"sleep0", "usleep0", "nanosleep0", "clock0", "sleep1", "usleep1",
                                            "nanosleep1", "clock1"});
}

TEST_CASE("clock_nanosleep: absolute deadlines, clocks, and error numbers as return values") {
    green::monkey::patch_all();
    ticker tick(1ms);
    for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME}) {
        CAPTURE(clock);
        timespec now{};
        REQUIRE(clock_gettime(clock, &now) == 0);
        timespec until = now;
        until.tv_nsec += 60'000'000;
        if (until.tv_nsec >= 1'000'000'000) {
            until.tv_nsec -= 1'000'000'000;
            ++until.tv_sec;
        }
        const int before = tick.ticks;
        const auto start = clock_type::now();
        CHECK(::clock_nanosleep(clock, TIMER_ABSTIME, &until, nullptr) == 0);
        const double elapsed = seconds_since(start);
        CHECK(elapsed >= 0.055);
        CHECK(elapsed < 0.2);
        CHECK(tick.ticks > before);  // waited in the hub
    }
    // A deadline in the past returns at once, without yielding (as in libc, no wait at all).
    timespec past{};
    REQUIRE(clock_gettime(CLOCK_MONOTONIC, &past) == 0);
    past.tv_sec -= 1;
    const int before = tick.ticks;
    CHECK(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr) == 0);
    CHECK(tick.ticks == before);

    // Errors are returned, not put in errno, in the hook as in libc.
    const timespec bad{0, 1'000'000'000};
    const timespec negative{-1, 0};
    const timespec ok = timespec_ms(1);
    auto clock_nanosleep_libc = LIBC(clock_nanosleep);
    for (auto [clock, req] : std::vector<std::pair<clockid_t, const timespec*>>{
             {CLOCK_MONOTONIC, &bad}, {CLOCK_MONOTONIC, &negative}, {CLOCK_THREAD_CPUTIME_ID, &ok}, {-42, &ok}}) {
        CAPTURE(clock);
        errno = 1234;
        const int hooked = ::clock_nanosleep(clock, 0, req, nullptr);
        CHECK(errno == 1234);
        CHECK(hooked == clock_nanosleep_libc(clock, 0, req, nullptr));
        CHECK(hooked != 0);
    }
}

TEST_CASE("nanosleep's invalid arguments fail as in libc; rem is left alone when the sleep completes") {
    green::monkey::patch_all();
    auto nanosleep_libc = LIBC(nanosleep);
    const timespec bad_nsec{0, 1'000'000'000};
    const timespec negative_nsec{0, -1};
    const timespec negative_sec{-1, 0};
    for (const timespec* req : {&bad_nsec, &negative_nsec, &negative_sec, static_cast<const timespec*>(nullptr)}) {
        const outcome hooked = in_greenlet([&] { return attempt([&] { return ::nanosleep(req, nullptr); }); });
        const outcome real = attempt([&] { return nanosleep_libc(req, nullptr); });
        CHECK(hooked == real);
        CHECK(real.result == -1);
    }
    timespec rem{123, 456};
    const timespec req = timespec_ms(20);
    CHECK(in_greenlet([&] { return ::nanosleep(&req, &rem); }) == 0);
    CHECK(rem.tv_sec == 123);
    CHECK(rem.tv_nsec == 456);
}

TEST_CASE("errno is kept across a patched sleep, whatever other greenlets do meanwhile") {
    green::monkey::patch_all();
    auto clobber = green::spawn([] { errno = EIO; });
    auto sleeper = green::spawn([] {
        std::vector<int> seen;
        const timespec req = timespec_ms(10);
        errno = 0;
        ::usleep(10'000);
        seen.push_back(errno);
        errno = 0;
        ::sleep(0);
        seen.push_back(errno);
        errno = 0;
        ::nanosleep(&req, nullptr);
        seen.push_back(errno);
        errno = 0;
        ::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, nullptr);
        seen.push_back(errno);
        return seen;
    });
    auto clobber_more = green::spawn([] {
        for (int i = 0; i < 20; ++i) {
            errno = EIO;
            green::sleep(1ms);
        }
    });
    CHECK(sleeper.get() == std::vector<int>{0, 0, 0, 0});
    green::joinall({clobber, clobber_more});
}

TEST_CASE("a sleep for ever (the largest lengths) waits in the hub until killed") {
    green::monkey::patch_all();
    const timespec forever{std::numeric_limits<time_t>::max(), 999'999'999};
    std::vector<green::any_task> sleepers{
        green::spawn([&] { ::nanosleep(&forever, nullptr); }),
        green::spawn([&] { ::clock_nanosleep(CLOCK_MONOTONIC, 0, &forever, nullptr); }),
        green::spawn([&] { ::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &forever, nullptr); }),
        green::spawn([] { ::sleep(UINT_MAX); }),
        green::spawn([] { ::usleep(UINT_MAX); }),
    };
    green::sleep(20ms);
    for (auto& s : sleepers) {
        CHECK_FALSE(s.dead());
        s.kill();
        CHECK(s.dead());
    }
}

TEST_CASE("in a thread without a hub, an interrupted sleep returns what libc's returns") {
    green::monkey::patch_all();
    // libc's sleep returns the whole seconds left (truncated), and nanosleep fills rem.
    const unsigned hooked_sleep = interrupted_in_thread([] { return ::sleep(3); }, 100ms);
    auto sleep_libc = LIBC(sleep);
    const unsigned real_sleep = interrupted_in_thread([&] { return sleep_libc(3); }, 100ms);
    CHECK(hooked_sleep == real_sleep);
    CHECK(real_sleep == 2u);

    const auto [result, error, left] = interrupted_in_thread(
        [] {
            const timespec req{3, 0};
            timespec rem{};
            const int r = ::nanosleep(&req, &rem);
            return std::tuple<int, int, double>(r, errno, seconds(rem));
        },
        100ms);
    CHECK(result == -1);
    CHECK(error == EINTR);
    CHECK(left > 2.5);
    CHECK(left < 2.95);

    const auto [usleep_result, usleep_error] = interrupted_in_thread(
        [] {
            const int r = ::usleep(3'000'000);
            return std::pair<int, int>(r, errno);
        },
        100ms);
    CHECK(usleep_result == -1);
    CHECK(usleep_error == EINTR);
}

TEST_CASE("in the hub greenlet itself, a sleep blocks the thread as libc's does") {
    green::monkey::patch_all();
    // Waiting in the hub would raise blocking_switch_error; the real call just sleeps.
    const double slept = in_hub([] {
        const auto start = clock_type::now();
        ::usleep(50'000);
        const timespec req = timespec_ms(20);
        ::nanosleep(&req, nullptr);
        return seconds_since(start);
    });
    CHECK(slept >= 0.065);
}

TEST_CASE("green::timeout interrupts a patched sleep by raising in the greenlet") {
    green::monkey::patch_all();
    const auto start = clock_type::now();
    bool timed_out = false;
    try {
        green::timeout limit(50ms);
        ::sleep(5);
    } catch (const green::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK(seconds_since(start) < 1.0);
}

TEST_CASE("a plain greenlet, not a task, waits in the hub too") {
    green::monkey::patch_all();
    ticker tick(1ms);
    const int before = tick.ticks;
    green::greenlet g([] {
        ::usleep(30'000);
        return 7;
    });
    CHECK(g.switch_to().get<int>() == 7);
    CHECK(tick.ticks - before >= 10);
}
