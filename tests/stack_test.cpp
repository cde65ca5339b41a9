// green/stack.hpp: stack sizes, the stack pool, the map-count fallback, and what an overflow
// does. Anything that is process-wide (the fallback) or fatal (an overflow) runs in a forked
// child, so that it cannot leak into the other tests.
#include <green/greenlet.hpp>
#include <green/stack.hpp>

#include <doctest/doctest.h>

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

using green::getcurrent;
using green::greenlet;
using green::greenlet_options;

#if defined(__SANITIZE_ADDRESS__)
// ASan's run-time switch for detect_stack_use_after_return (asan_interface_internal.h).
extern "C" int __asan_option_detect_stack_use_after_return;
#endif

namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;
constexpr std::size_t page = 4 * KiB;

// How a forked child ended and what it wrote.
struct child_outcome {
    int exit_code = -1;  // when it exited
    int signal = 0;      // when a signal ended it
    std::string out;
    std::string err;
};

// Runs body in a forked child with its stdout and stderr captured; body's result is the
// child's exit code. The child never returns into the test runner.
child_outcome run_in_child(const std::function<int()>& body) {
    int out[2], err[2];
    REQUIRE(pipe(out) == 0);
    REQUIRE(pipe(err) == 0);
    std::fflush(nullptr);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const rlimit no_core{0, 0};  // an expected abort should not leave a core file
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
        int code = 100;
        try {
            code = body();
        } catch (...) {
            std::fputs("child: exception escaped\n", stderr);
        }
        std::fflush(nullptr);
        _exit(code);
    }
    close(out[1]);
    close(err[1]);
    child_outcome outcome;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* sinks[2] = {&outcome.out, &outcome.err};
    for (int open = 2; open > 0;) {
        if (poll(fds, 2, -1) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            char buf[4096];
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    return outcome;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// Recurses until `bytes` of stack lie between `top` and the current frame; returns the depth.
// Measured by frame addresses, so it uses that much stack whatever the frames' sizes are
// (sanitizer builds move locals off the stack).
[[gnu::noinline]] std::size_t use_stack(const char* top, std::size_t bytes) {
    volatile char pad[256];
    pad[0] = 1;
    const char* here = static_cast<const char*>(__builtin_frame_address(0));
    if (static_cast<std::size_t>(top - here) >= bytes) return 1;
    return use_stack(top, bytes) + pad[0];
}

std::size_t use_stack(std::size_t bytes) {
    return use_stack(static_cast<const char*>(__builtin_frame_address(0)), bytes);
}

// More than any default stack holds (256 KiB, or 1 MiB in sanitizer builds).
constexpr std::size_t deep = 3 * MiB;
constexpr std::size_t roomy = 4 * MiB;

}  // namespace

TEST_CASE("a greenlet given a bigger stack runs a recursion that overflows the default one") {
    REQUIRE(green::default_stack_size() < deep);
    auto recurse = [] { return use_stack(deep) > 0; };
    CHECK(greenlet(recurse, {.stack_size = roomy}).switch_to().get<bool>());

    child_outcome on_default = run_in_child([&] {
        greenlet(recurse, {.name = "on-default"}).switch_to();
        return 0;
    });
    CHECK(on_default.signal == SIGABRT);
    CHECK(on_default.err == "green: stack overflow in greenlet on-default\n");
}

TEST_CASE("set_default_stack_size sets the stack of the calling thread's new greenlets") {
    const std::size_t main_default = green::default_stack_size();
    std::size_t thread_default = 0;
    bool recursed = false;
    std::thread([&] {
        green::set_default_stack_size(roomy);
        thread_default = green::default_stack_size();
        recursed = greenlet([] { return use_stack(deep) > 0; }).switch_to().get<bool>();
    }).join();
    CHECK(thread_default == roomy);
    CHECK(recursed);
    CHECK(green::default_stack_size() == main_default);  // other threads keep theirs

    std::vector<std::size_t> rounded;
    std::thread([&] {
        for (std::size_t asked : {std::size_t{1}, 16 * KiB, 70'000 * std::size_t{1}}) {
            green::set_default_stack_size(asked);
            rounded.push_back(green::default_stack_size());
        }
    }).join();
    CHECK(rounded == std::vector<std::size_t>{16 * KiB, 16 * KiB, 18 * page});  // at least 16 KiB, whole pages
}

TEST_CASE("stack_statistics counts the stacks of started greenlets only") {
    greenlet main = getcurrent();
    const auto before = green::stack_statistics();
    greenlet unstarted([] {});
    CHECK(green::stack_statistics().guarded_in_use == before.guarded_in_use);
    std::vector<greenlet> parked;
    for (int i = 0; i < 3; ++i) {
        parked.emplace_back([&] { main.switch_to(); }, green::greenlet_options{.stack_size = 96 * KiB});
        parked.back().switch_to();
    }
    CHECK(green::stack_statistics().guarded_in_use == before.guarded_in_use + 3);
    CHECK(green::stack_statistics().unguarded_in_use == before.unguarded_in_use);
    parked.clear();  // killed: their stacks go back to the pool
    const auto after = green::stack_statistics();
    CHECK(after.guarded_in_use == before.guarded_in_use);
    CHECK(after.pooled == before.pooled + 3);
    CHECK(after.guarded_limit == before.guarded_limit);
}

TEST_CASE("a dead greenlet's stack goes back to the pool and the next greenlet reuses it") {
    const green::greenlet_options options{.stack_size = 80 * KiB};  // a size no other test uses
    greenlet main = getcurrent();
    auto record_frame = [&] { main.switch_to(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0))); };
    const auto before = green::stack_statistics();

    greenlet first(record_frame, options);
    auto first_frame = first.switch_to().get<std::uintptr_t>();
    CHECK(green::stack_statistics().guarded_in_use == before.guarded_in_use + 1);
    first.switch_to();  // it finishes
    CHECK(first.dead());
    CHECK(green::stack_statistics().guarded_in_use == before.guarded_in_use);
    CHECK(green::stack_statistics().pooled == before.pooled + 1);

    greenlet second(record_frame, options);
    auto second_frame = second.switch_to().get<std::uintptr_t>();
    CHECK(green::stack_statistics().pooled == before.pooled);
    CHECK(green::stack_statistics().guarded_in_use == before.guarded_in_use + 1);
    // Both first frames lie within one stack's length of each other: the same stack.
    const auto distance = first_frame > second_frame ? first_frame - second_frame : second_frame - first_frame;
    CHECK(distance < options.stack_size);
    second.switch_to();
}

TEST_CASE("past the map-count budget, stacks come unguarded, work, and the library says so once") {
    child_outcome child = run_in_child([] {
#if defined(__SANITIZE_ADDRESS__)
        // With detect_stack_use_after_return each greenlet also gets an ASan fake stack, one
        // more mapping, and ASan itself runs out of vm.max_map_count (and aborts) before this
        // test gets past the budget. This child is a separate process: nothing leaks out.
        __asan_option_detect_stack_use_after_return = 0;
#endif
        green::set_default_stack_size(16 * KiB);  // keeps ~32,000 greenlets to a few hundred MiB
        greenlet main = getcurrent();
        const auto start = green::stack_statistics();
        const std::size_t count = start.guarded_limit + 500;
        std::vector<greenlet> parked;
        parked.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            parked.emplace_back([&](long x) { return main.switch_to(x).get<long>() + x; });
            if (parked.back().switch_to(static_cast<long>(i)).get<long>() != static_cast<long>(i)) {
                std::fprintf(stderr, "child: greenlet %zu did not start\n", i);
                return 1;
            }
        }
        const auto full = green::stack_statistics();
        std::printf("guarded %zu of %zu, unguarded %zu\n", full.guarded_in_use, full.guarded_limit,
                    full.unguarded_in_use);
        if (full.unguarded_in_use == 0 || full.guarded_in_use > full.guarded_limit) return 2;
        for (std::size_t i = 0; i < count; ++i) {
            if (parked[i].switch_to(static_cast<long>(2 * i)).get<long>() != static_cast<long>(3 * i)) {
                std::fprintf(stderr, "child: greenlet %zu returned the wrong sum\n", i);
                return 3;
            }
        }
        const auto done = green::stack_statistics();
        return done.guarded_in_use == 0 && done.unguarded_in_use == 0 ? 0 : 4;
    });
    INFO("child stdout: " << child.out);
    INFO("child stderr: " << child.err);
    CHECK(child.exit_code == 0);
    CHECK(occurrences(child.err, "reach the vm.max_map_count budget; further greenlet stacks have no guard page") == 1);
}

TEST_CASE("a stack overflow stops the process and names the greenlet") {
    auto overflow = [](green::greenlet_options options) {
        return run_in_child([options] {
            greenlet g([] { use_stack(static_cast<std::size_t>(-1)); }, options);
            std::printf("%llu", static_cast<unsigned long long>(g.id()));
            std::fflush(stdout);
            g.switch_to();
            return 0;
        });
    };
    // The fault handler reports and aborts before ASan's own SIGSEGV handler (which it chains
    // to for other faults) sees the fault, so this holds in the sanitizer build too.
    child_outcome named = overflow({.name = "deep"});
    CHECK(named.signal == SIGABRT);
    CHECK(named.err == "green: stack overflow in greenlet deep\n");

    child_outcome unnamed = overflow({});
    CHECK(unnamed.signal == SIGABRT);
    CHECK(unnamed.err == "green: stack overflow in greenlet " + unnamed.out + "\n");
}

namespace {
constexpr std::size_t small_stack = 16 * KiB;

// Does to an unguarded stack what a too-deep recursion does: writes all of it below the
// running frames, down to the bottom, where the canary is. The running frames sit in the
// stack's top page, so rounding the frame address up to a page gives the top.
[[gnu::noinline]] void scribble_below_frames() {
    const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    const std::uintptr_t top = (frame + page - 1) / page * page;
    const std::uintptr_t bottom = top - small_stack;
    const std::uintptr_t end = frame - page;  // well clear of this frame and memset's
    std::memset(reinterpret_cast<void*>(bottom), 0x5a, end - bottom);
}
}  // namespace

TEST_CASE("an unguarded stack whose bottom is overwritten stops the process as the greenlet leaves it") {
    bool by_dying = false;
    SUBCASE("by switching away") {}
    SUBCASE("by finishing") { by_dying = true; }
    child_outcome child = run_in_child([by_dying] {
#if defined(__SANITIZE_ADDRESS__)
        __asan_option_detect_stack_use_after_return = 0;  // as in the fallback test above
#endif
        green::set_default_stack_size(small_stack);
        greenlet main = getcurrent();
        std::vector<greenlet> parked;
        while (green::stack_statistics().unguarded_in_use == 0) {
            parked.emplace_back([&] { main.switch_to(); });
            parked.back().switch_to();
        }
        greenlet victim(
            [&] {
                const auto unguarded = green::stack_statistics().unguarded_in_use;
                if (unguarded < 2) std::_Exit(1);  // parked's last one, and this one
                scribble_below_frames();
                if (by_dying) return;  // the canary is checked as it leaves
                main.switch_to();
                std::_Exit(2);
            },
            {.name = "victim"});
        victim.switch_to();
        return 3;  // it left its stack without a word
    });
    INFO("child stderr: " << child.err);
    CHECK(child.signal == SIGABRT);
    // After the fallback notice, the last thing it says:
    CHECK(child.err.ends_with("\ngreen: stack overflow in greenlet victim\n"));
}

// ---- stack_policy::shared -------------------------------------------------------------------

namespace {
// Fills a frame-local buffer with a pattern derived from seed, switches away, and checks on
// return that every byte survived the trip through the heap copy.
[[gnu::noinline]] bool frame_survives(greenlet& back, unsigned seed, std::size_t rounds) {
    volatile unsigned char buf[2048];
    for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<unsigned char>(seed * 31 + i);
    for (std::size_t r = 0; r < rounds; ++r) back.switch_to();
    for (std::size_t i = 0; i < sizeof buf; ++i)
        if (buf[i] != static_cast<unsigned char>(seed * 31 + i)) return false;
    return true;
}
}  // namespace

TEST_CASE("greenlets on the shared stack keep their frames across each other's switches") {
    greenlet main = getcurrent();
    constexpr int count = 50;
    constexpr std::size_t rounds = 5;
    int intact = 0;
    std::vector<greenlet> gs;
    for (int i = 0; i < count; ++i)
        gs.emplace_back(
            [&, i] {
                // Different depths, so the saved copies have different sizes.
                if (frame_survives(main, static_cast<unsigned>(i), rounds)) ++intact;
            },
            greenlet_options{.policy = green::stack_policy::shared});
    // Interleave: each round resumes every greenlet once, each overwriting the shared stack.
    for (std::size_t r = 0; r <= rounds; ++r)
        for (auto& g : gs) g.switch_to();
    CHECK(intact == count);
    for (auto& g : gs) CHECK(g.dead());
}

TEST_CASE("a shared-stack greenlet switches directly to another on the same stack, passing values") {
    // a and b both live on the shared stack; each resumes the other, which has to go through a
    // copy while the running one's frames occupy the very stack the target needs.
    greenlet main = getcurrent();
    greenlet a, b;
    std::vector<int> trace;
    const greenlet_options shared{.policy = green::stack_policy::shared};
    a = greenlet(
        [&](int x) {
            for (int i = 0; i < 3; ++i) {
                trace.push_back(x);
                x = b.switch_to(x + 1).get<int>();
            }
            return x;
        },
        shared);
    b = greenlet(
        [&](int x) {
            for (;;) {
                trace.push_back(x);
                x = a.switch_to(x * 10).get<int>();
            }
        },
        shared);
    b.set_parent(main);
    CHECK(a.switch_to(1).get<int>() == 2110);
    CHECK(trace == std::vector<int>{1, 2, 20, 21, 210, 211});
    CHECK(a.dead());
    b.throw_();  // greenlet_exit unwinds b on the shared stack
    CHECK(b.dead());
}

TEST_CASE("parked shared-stack greenlets take no stack of their own") {
    greenlet main = getcurrent();
    const auto before = green::stack_statistics();
    std::vector<greenlet> parked;
    for (int i = 0; i < 2000; ++i) {
        parked.emplace_back([&] { main.switch_to(); }, greenlet_options{.policy = green::stack_policy::shared});
        parked.back().switch_to();
    }
    const auto during = green::stack_statistics();
    // One shared stack for the thread, one for the switcher at most; not one per greenlet.
    CHECK(during.guarded_in_use + during.unguarded_in_use <= before.guarded_in_use + before.unguarded_in_use + 2);
    parked.clear();  // killed: each is swapped back in to unwind
}

TEST_CASE("set_default_stack_policy applies to the calling thread's new greenlets only") {
    CHECK(green::default_stack_policy() == green::stack_policy::dedicated);
    std::thread([] {
        green::set_default_stack_policy(green::stack_policy::shared);
        CHECK(green::default_stack_policy() == green::stack_policy::shared);
        greenlet main = getcurrent();
        const auto before = green::stack_statistics().guarded_in_use;
        std::vector<greenlet> parked;
        for (int i = 0; i < 100; ++i) {
            parked.emplace_back([&] { main.switch_to(); });
            parked.back().switch_to();
        }
        CHECK(green::stack_statistics().guarded_in_use <= before + 2);
    }).join();
    CHECK(green::default_stack_policy() == green::stack_policy::dedicated);
}

TEST_CASE("a stack overflow on the shared stack names the greenlet") {
    child_outcome child = run_in_child([] {
        greenlet g([] { use_stack(static_cast<std::size_t>(-1)); },
                   {.name = "sharer", .policy = green::stack_policy::shared});
        g.switch_to();
        return 0;
    });
    CHECK(child.signal == SIGABRT);
    CHECK(child.err == "green: stack overflow in greenlet sharer\n");
}
