// A tiny harness for side-by-side benchmarks: each measure runs several times and reports
// the median with its min and max, so two peers measured in one run compare fairly.
#pragma once

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

namespace bench {

struct result {
    double median, min, max;  // nanoseconds per operation
};

// Nanoseconds on `clock` (a clock_gettime clock id).
inline double clock_ns(clockid_t clock) {
    timespec ts;
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Times `body(n)` (which performs n operations) `repetitions` times; returns ns/op. Wall time
// by default; CLOCK_PROCESS_CPUTIME_ID counts only the CPU spent, not time spent asleep (for
// work that mostly waits on timers).
inline result measure(std::size_t n, int repetitions, const std::function<void(std::size_t)>& body,
                      clockid_t clock = CLOCK_MONOTONIC) {
    body(n / 10 + 1);  // warm up: caches, pooled stacks, lazily created state
    std::vector<double> samples;
    for (int r = 0; r < repetitions; ++r) {
        const double t0 = clock_ns(clock);
        body(n);
        const double t1 = clock_ns(clock);
        samples.push_back((t1 - t0) / static_cast<double>(n));
    }
    std::sort(samples.begin(), samples.end());
    return {samples[samples.size() / 2], samples.front(), samples.back()};
}

// The machine-readable line scripts/bench.sh collects: "@ <measure> <implementation> <value>",
// the value in the measure's unit (the median, for a result).
inline void emit(const char* measure, const char* impl, double value) {
    std::printf("@ %s %s %.6g\n", measure, impl, value);
    std::fflush(stdout);
}
inline void emit(const char* measure, const char* impl, const result& r) { emit(measure, impl, r.median); }

inline void print(const std::string& name, const result& r) {
    std::printf("  %-44s %9.2f ns  (min %.2f, max %.2f)\n", name.c_str(), r.median, r.min, r.max);
}

inline void print_ratio(const std::string& what, const result& ours, const result& peer) {
    std::printf("  %-44s %9.2fx\n", what.c_str(), ours.median / peer.median);
}

// The ratio of medians, and which side is faster by how much.
inline void print_comparison(const std::string& what, const result& ours, const result& peer) {
    const double ratio = ours.median / peer.median;
    std::printf("  %-44s %9.2fx  (%s %.1fx %s)\n", what.c_str(), ratio, "green", ratio <= 1 ? 1 / ratio : ratio,
                ratio <= 1 ? "faster" : "slower");
}

}  // namespace bench
