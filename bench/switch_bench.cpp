// The switch round trip (A -> B -> A) of a greenlet against its floor and its peers, measured
// in the same run:
//   - boost::context::fiber resume: what green's switch is built on, the floor on this machine;
//   - ucontext swapcontext: the POSIX way (it saves and restores the signal mask: a syscall);
//   - two std::threads handing a turn back and forth through a futex: what a switch costs
//     when the kernel does it.
//
//     ./build-release/bench/switch_bench [scale]        # scale 1 by default; 0.1 for a quick look
#include "measure.hpp"

#include <green/greenlet.hpp>

#include <boost/context/fiber.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace ctx = boost::context;

namespace {

std::size_t scaled(double scale, std::size_t n) {
    const auto s = static_cast<std::size_t>(static_cast<double>(n) * scale);
    return s ? s : 1;
}

// ---- ucontext ping-pong
ucontext_t main_context, partner_context;

void partner_loop() {
    for (;;) swapcontext(&partner_context, &main_context);
}

// ---- a turn handed between two threads: each waits on the futex until it is its turn
std::atomic<int> turn{0};

void futex_wait(int expected) {
    while (turn.load(std::memory_order_acquire) == expected)
        syscall(SYS_futex, reinterpret_cast<int*>(&turn), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void pass_turn(int to) {
    turn.store(to, std::memory_order_release);
    syscall(SYS_futex, reinterpret_cast<int*>(&turn), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace

int main(int argc, char** argv) {
    const double scale = argc > 1 ? std::strtod(argv[1], nullptr) : 1.0;
    const std::size_t n = scaled(scale, 5'000'000);
    const int repetitions = 7;

    ctx::fiber fiber{[](ctx::fiber&& caller) {
        for (;;) caller = std::move(caller).resume();
        return std::move(caller);
    }};
    auto raw = bench::measure(n, repetitions, [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) fiber = std::move(fiber).resume();
    });

    green::greenlet main = green::getcurrent();
    green::greenlet partner([&] {
        for (;;) main.switch_to();
    });
    auto greenlet = bench::measure(n, repetitions, [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) partner.switch_to();
    });
    auto with_value = bench::measure(n, repetitions, [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) partner.switch_to(static_cast<int>(i));
    });

    std::vector<char> stack(64 * 1024);
    getcontext(&partner_context);
    partner_context.uc_stack.ss_sp = stack.data();
    partner_context.uc_stack.ss_size = stack.size();
    partner_context.uc_link = nullptr;
    makecontext(&partner_context, partner_loop, 0);
    auto ucontext = bench::measure(scaled(scale, 1'000'000), repetitions, [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) swapcontext(&main_context, &partner_context);
    });

    // Each round: main hands the turn to the other thread, which hands it back.
    auto threads = bench::measure(scaled(scale, 100'000), repetitions, [&](std::size_t count) {
        turn.store(0);
        std::thread other([count] {
            for (std::size_t i = 0; i < count; ++i) {
                futex_wait(0);
                pass_turn(0);
            }
        });
        for (std::size_t i = 0; i < count; ++i) {
            pass_turn(1);
            futex_wait(1);
        }
        other.join();
    });

    std::printf("switch round trip (A -> B -> A), ns, median of %d runs:\n", repetitions);
    bench::print("boost::context::fiber resume (raw)", raw);
    bench::print("green::greenlet switch_to()", greenlet);
    bench::print("green::greenlet switch_to(int)", with_value);
    bench::print("ucontext swapcontext", ucontext);
    bench::print("std::thread futex hand-off", threads);
    bench::print_ratio("greenlet / raw fiber", greenlet, raw);
    bench::print_ratio("greenlet passing an int / raw fiber", with_value, raw);
    bench::emit("switch_rt", "green", greenlet);
    bench::emit("switch_rt", "fiber-raw", raw);
    bench::emit("switch_rt", "ucontext", ucontext);
    bench::emit("switch_rt", "std-thread", threads);
}
