// Resident memory per parked greenlet: how much RAM 100k waiting greenlets really cost, for each
// of green's stack policies and for Boost.Fiber.
//
//     ./build-release/bench/rss_bench [count]          # count 100000 by default
//
// Each case runs in a fresh child process (fork), so no case pays for the memory of another,
// and reads the growth of its resident set (/proc/self/statm) from just before the first
// greenlet is made to when all of them are parked, divided by the count:
//   green           hub tasks (the default, dedicated stacks) parked in event::wait()
//   green-greenlet  raw greenlets on dedicated stacks, switched into once and parked in a small
//                   frame (switched back to main)
//   green-shared    the same with stack_policy::shared: a parked one keeps only its used bytes
//   boost-fiber     fibers (default fixedsize_stack) parked on a condition_variable
// Everything the greenlet owns counts: its stack pages, its control block, the task record,
// allocator overhead. Prints a human line and an "@ rss_parked <impl> <bytes>" line per case.
#include "measure.hpp"

#include <green/event.hpp>
#include <green/greenlet.hpp>
#include <green/hub.hpp>

#include <boost/fiber/all.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <vector>

namespace {

double resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double hub_tasks(std::size_t count) {
    green::event release;
    std::size_t parked = 0;
    green::sleep();  // the hub and its loop exist before the first reading
    std::vector<green::any_task> tasks;
    tasks.reserve(count);
    const double before = resident_bytes();
    for (std::size_t i = 0; i < count; ++i)
        tasks.push_back(green::spawn([&] {
            ++parked;
            release.wait();
        }));
    while (parked < count) green::sleep();
    const double after = resident_bytes();
    release.set();
    green::joinall(tasks);
    return (after - before) / static_cast<double>(count);
}

double raw_greenlets(std::size_t count, green::stack_policy policy) {
    // Left alive on purpose: the child exits right after the reading, and tearing down 100k
    // greenlets (a greenlet_exit thrown into each) would measure nothing.
    auto* parked = new std::vector<green::greenlet>;
    parked->reserve(count);
    green::greenlet main = green::getcurrent();
    const double before = resident_bytes();
    for (std::size_t i = 0; i < count; ++i) {
        parked->emplace_back([&main] { main.switch_to(); }, green::greenlet_options{.policy = policy});
        parked->back().switch_to();
    }
    return (resident_bytes() - before) / static_cast<double>(count);
}

double fibers_parked(std::size_t count) {
    boost::fibers::mutex mutex;
    boost::fibers::condition_variable released;
    bool go = false;
    std::size_t parked = 0;
    std::vector<boost::fibers::fiber> all;
    all.reserve(count);
    const double before = resident_bytes();
    for (std::size_t i = 0; i < count; ++i)
        all.emplace_back([&] {
            std::unique_lock<boost::fibers::mutex> hold(mutex);
            ++parked;
            released.wait(hold, [&] { return go; });
        });
    while (parked < count) boost::this_fiber::yield();
    const double after = resident_bytes();
    {
        std::lock_guard<boost::fibers::mutex> hold(mutex);
        go = true;
    }
    released.notify_all();
    for (auto& f : all) f.join();
    return (after - before) / static_cast<double>(count);
}

// Runs `measure` in a child process and returns what it printed (bytes per greenlet).
template <class Measure>
double in_child(Measure measure) {
    int out[2];
    if (pipe(out) != 0) std::abort();
    std::fflush(stdout);
    const pid_t child = fork();
    if (child == 0) {
        close(out[0]);
        dup2(out[1], STDOUT_FILENO);
        std::printf("%.1f\n", measure());
        std::fflush(stdout);
        _exit(0);
    }
    close(out[1]);
    char text[64] = {};
    const ssize_t got = read(out[0], text, sizeof text - 1);
    close(out[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "rss_bench: a measuring child failed\n");
        std::exit(1);
    }
    return std::strtod(text, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t count = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100'000;
    std::printf("Resident memory per parked greenlet, %zu parked (each case in a fresh process)\n", count);
    struct row {
        const char* impl;
        const char* what;
        double bytes;
    };
    const row rows[] = {
        {"green", "hub tasks in event::wait() (dedicated stacks)", in_child([&] { return hub_tasks(count); })},
        {"green-greenlet", "raw greenlets, dedicated stacks",
         in_child([&] { return raw_greenlets(count, green::stack_policy::dedicated); })},
        {"green-shared", "raw greenlets, stack_policy::shared",
         in_child([&] { return raw_greenlets(count, green::stack_policy::shared); })},
        {"boost-fiber", "Boost.Fiber fibers on a condition_variable", in_child([&] { return fibers_parked(count); })},
    };
    for (const auto& r : rows) std::printf("  %-16s %-48s %9.0f B\n", r.impl, r.what, r.bytes);
    for (const auto& r : rows) bench::emit("rss_parked", r.impl, r.bytes);
}
