// Greenlet switch round trip (A -> B -> A) against a raw boost::context::fiber ping-pong, the
// floor for a switch on this machine, measured in the same run.
//
//     ./build/bench/switch_bench [iterations]
#include "measure.hpp"

#include <green/greenlet.hpp>

#include <boost/context/fiber.hpp>

#include <cstdlib>

namespace ctx = boost::context;

int main(int argc, char** argv) {
    const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 5'000'000;
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

    std::printf("switch round trip (A -> B -> A), median of %d x %zu:\n", repetitions, n);
    bench::print("boost::context::fiber resume (raw)", raw);
    bench::print("green::greenlet switch_to()", greenlet);
    bench::print("green::greenlet switch_to(int)", with_value);
    bench::print_ratio("greenlet / raw fiber", greenlet, raw);
    bench::print_ratio("greenlet passing an int / raw fiber", with_value, raw);
}
