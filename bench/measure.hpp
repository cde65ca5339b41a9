// A tiny harness for side-by-side benchmarks: each measure runs several times and reports
// the median with its min and max, so two peers measured in one run compare fairly.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace bench {

struct result {
    double median, min, max;  // nanoseconds per operation
};

// Times `body(n)` (which performs n operations) `repetitions` times; returns ns/op.
inline result measure(std::size_t n, int repetitions, const std::function<void(std::size_t)>& body) {
    body(n / 10 + 1);  // warm up: caches, pooled stacks, lazily created state
    std::vector<double> samples;
    for (int r = 0; r < repetitions; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        body(n);
        auto t1 = std::chrono::steady_clock::now();
        samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n));
    }
    std::sort(samples.begin(), samples.end());
    return {samples[samples.size() / 2], samples.front(), samples.back()};
}

inline void print(const std::string& name, const result& r) {
    std::printf("  %-44s %9.2f ns  (min %.2f, max %.2f)\n", name.c_str(), r.median, r.min, r.max);
}

inline void print_ratio(const std::string& what, const result& ours, const result& peer) {
    std::printf("  %-44s %9.2fx\n", what.c_str(), ours.median / peer.median);
}

}  // namespace bench
