// Reading a results file into measures and impls, the statistics over repetitions, and the
// design's targets, all as tables of data.
#include "report.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace report {

namespace {

struct known_measure {
    std::string_view id, title, unit;
    better direction;
    std::string_view reference = "green";
};

// The order of this table is the order of the report.
constexpr known_measure known_measures[] = {
    {"switch_rt", "greenlet switch round trip", "ns", better::lower},
    {"sleep_rt", "hub sleep() round trip (yield to the hub and back)", "ns", better::lower},
    {"spawn_join_one", "spawn + join an empty task, one by one", "ns", better::lower},
    {"spawn_join_batch", "spawn 100k empty tasks, then join them all (per task)", "ns", better::lower},
    {"rss_parked", "RSS per parked greenlet, 100k parked", "bytes", better::lower},
    {"timers", "100k timers (CPU per timer)", "ns", better::lower},
    {"sleeping_tasks", "100k tasks each sleeping (spawn + sleep + exit, per task)", "ns", better::lower},
    {"event_handoff", "event hand-off between two tasks", "ns", better::lower},
    {"echo_rtps", "echo, round trips/s (64 connections)", "rt/s", better::higher},
    {"echo_cpu", "echo, server CPU per round trip", "µs", better::lower},
    {"http_rps", "HTTP hello, requests/s under wrk", "req/s", better::higher},
    {"http_cpu", "HTTP hello, server CPU per request", "µs", better::lower},
    // The crawler has no plain `green` variant: its green is the libcurl one.
    {"crawler_s", "crawler: 100 requests to a 1 s slow server", "s", better::lower, "green-curl"},
};

// green first, then its variants, then the peers from the closest to green's design outwards.
constexpr std::string_view known_impls[] = {
    "green",     "green-shared", "green-patched", "green-socket", "green-curl",      "fiber-raw",
    "boost-fiber", "ucontext",   "std-thread",    "epoll-c",      "python-greenlet", "gevent",
};

enum class bound { at_most, at_least };

// A target: `impl`'s median (or, with `per_impl`, the ratio impl / per_impl) against `limit`.
struct target {
    std::string_view measure, impl, per_impl;
    bound direction;
    double limit;
};

constexpr target targets[] = {
    {"switch_rt", "green", "fiber-raw", bound::at_most, 1.2},
    {"sleep_rt", "boost-fiber", "green", bound::at_least, 2},
    {"sleep_rt", "gevent", "green", bound::at_least, 50},
    {"spawn_join_one", "green", "", bound::at_most, 150},
    {"spawn_join_one", "boost-fiber", "green", bound::at_least, 2},
    {"spawn_join_batch", "green", "", bound::at_most, 150},
    {"spawn_join_batch", "boost-fiber", "green", bound::at_least, 2},
    {"rss_parked", "green", "", bound::at_most, 8192},
    {"timers", "green", "", bound::at_most, 1000},
    {"echo_rtps", "green", "epoll-c", bound::at_least, 1.0},
    {"echo_cpu", "green", "epoll-c", bound::at_most, 1.1},
    {"http_rps", "green", "epoll-c", bound::at_least, 0.95},
    {"crawler_s", "green-curl", "", bound::at_most, 1.2},
};

// Where a measure or an impl goes in the report: its row in the table, or after all of them
// (unknown ones then keep the order they came in: the sorts are stable).
std::size_t measure_rank(std::string_view id) {
    const auto* found = std::find_if(std::begin(known_measures), std::end(known_measures),
                                     [&](const known_measure& m) { return m.id == id; });
    return static_cast<std::size_t>(found - std::begin(known_measures));
}

std::size_t impl_rank(std::string_view impl) {
    return static_cast<std::size_t>(std::find(std::begin(known_impls), std::end(known_impls), impl) -
                                    std::begin(known_impls));
}

measure_info info_for(std::string_view id) {
    const std::size_t at = measure_rank(id);
    if (at == std::size(known_measures)) return measure_info{std::string(id), std::string(id), "", better::lower};
    const known_measure& m = known_measures[at];
    return measure_info{std::string(m.id), std::string(m.title), std::string(m.unit), m.direction,
                        std::string(m.reference)};
}

double median_of(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t at = 0;
    while (true) {
        at = line.find_first_not_of(" \t", at);
        if (at == std::string_view::npos) return words;
        const std::size_t end = std::min(line.find_first_of(" \t", at), line.size());
        words.push_back(line.substr(at, end - at));
        at = end;
    }
}

std::string_view trim(std::string_view s) {
    const std::size_t first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

std::optional<double> parse_number(std::string_view word) {
    double value;
    const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (error != std::errc() || end != word.data() + word.size() || !std::isfinite(value)) return std::nullopt;
    return value;
}

// A target's limit as the table writes it: 1.2, 0.95, 150 (8192 bytes: 8 KiB).
std::string format_limit(double limit, const scale& s) {
    char digits[32];
    const auto written = std::to_chars(std::begin(digits), std::end(digits), limit / s.divisor);
    std::string text(digits, written.ptr);
    return s.unit.empty() ? text : text + " " + s.unit;
}

// The measure's preferred reference if it was measured, else its first green impl.
std::string choose_reference(const measure_results& m) {
    if (m.find(m.info.reference)) return m.info.reference;
    for (const series& s : m.impls)
        if (is_green(s.impl)) return s.impl;
    return {};
}

// "green / fiber-raw ≤ 1.2×", "green ≤ 150 ns".
std::string goal(const target& t, const measure_info& info) {
    const std::string_view comparison = t.direction == bound::at_most ? " ≤ " : " ≥ ";
    if (t.per_impl.empty()) return cat(t.impl, comparison, format_limit(t.limit, scale_for(info.unit, t.limit)));
    return cat(t.impl, " / ", t.per_impl, comparison, format_limit(t.limit, {1, ""}), "×");
}

// What a target is judged on, the impl's median or the ratio impl / per_impl, and how it reads.
struct measurement {
    double value;
    std::string text;
};

std::optional<measurement> measure(const target& t, const measure_results& m) {
    const series* numerator = m.find(t.impl);
    if (!numerator) return std::nullopt;
    if (t.per_impl.empty()) {
        const summary s = numerator->stats();
        const scale sc = scale_for(m);
        std::string text = format_value(s.median, sc);
        if (format_number(s.min / sc.divisor) != format_number(s.max / sc.divisor))
            text += cat(" (", format_range(s.min, s.max, sc), ")");
        return measurement{s.median, text};
    }
    const series* denominator = m.find(t.per_impl);
    const auto q = denominator ? ratio_of(*numerator, *denominator) : std::nullopt;
    if (!q) return std::nullopt;
    return measurement{q->median, format_ratio_range(*q)};
}

// Why a target has no measurement: "no sleep_rt results", "no gevent", "a value ≤ 0".
std::string what_is_missing(const target& t, const measure_results* m) {
    if (!m) return cat("no ", t.measure, " results");
    std::string missing;
    for (const std::string_view impl : {t.impl, t.per_impl})
        if (!impl.empty() && !m->find(impl)) missing += cat(missing.empty() ? "no " : " or ", impl);
    return missing.empty() ? "a value ≤ 0" : missing;
}

}  // namespace

bool is_green(std::string_view impl) { return impl == "green" || impl.starts_with("green-"); }

summary series::stats() const {
    const auto [min, max] = std::minmax_element(values.begin(), values.end());
    return {median_of(values), *min, *max};
}

const series* measure_results::find(std::string_view impl) const {
    const auto found = std::find_if(impls.begin(), impls.end(), [&](const series& s) { return s.impl == impl; });
    return found == impls.end() ? nullptr : &*found;
}

std::optional<ratio> ratio_of(const series& numerator, const series& denominator) {
    auto positive = [](const series& s) {
        return std::all_of(s.values.begin(), s.values.end(), [](double v) { return v > 0; });
    };
    if (!positive(numerator) || !positive(denominator)) return std::nullopt;
    if (numerator.values.size() != denominator.values.size()) {
        const double r = numerator.stats().median / denominator.stats().median;
        return ratio{r, r, r, false};
    }
    std::vector<double> per_repetition;
    for (std::size_t i = 0; i < numerator.values.size(); ++i)
        per_repetition.push_back(numerator.values[i] / denominator.values[i]);
    const auto [min, max] = std::minmax_element(per_repetition.begin(), per_repetition.end());
    return ratio{median_of(per_repetition), *min, *max, true};
}

std::optional<ratio> measure_results::relative_cost(const series& s) const {
    const series* ref = find(reference);
    if (!ref) return std::nullopt;
    return info.direction == better::lower ? ratio_of(s, *ref) : ratio_of(*ref, s);
}

results read_results(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(cat("cannot read ", path, ": ", std::strerror(errno)));
    results r;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string where = path + ":" + std::to_string(number) + ": ";
        if (line.starts_with("@")) {
            const auto words = split_words(line);
            const auto value = words.size() == 4 && words[0] == "@" ? parse_number(words[3]) : std::nullopt;
            if (!value)
                throw std::runtime_error(where + "malformed result line, expected '@ <measure> <impl> <number>': " +
                                         line);
            const std::string measure(words[1]), impl(words[2]);
            auto m = std::find_if(r.measures.begin(), r.measures.end(),
                                  [&](const measure_results& x) { return x.info.id == measure; });
            if (m == r.measures.end()) {
                r.measures.push_back({info_for(measure), {}, {}});
                m = std::prev(r.measures.end());
            }
            auto s = std::find_if(m->impls.begin(), m->impls.end(), [&](const series& x) { return x.impl == impl; });
            if (s == m->impls.end()) {
                m->impls.push_back({impl, {}});
                s = std::prev(m->impls.end());
            }
            s->values.push_back(*value);
        } else if (line.starts_with("=")) {
            const std::string_view rest = std::string_view(line).substr(1);
            const std::size_t colon = rest.find(':');
            const std::string_view key = colon == std::string_view::npos ? std::string_view() : trim(rest.substr(0, colon));
            if (key.empty())
                throw std::runtime_error(where + "malformed metadata line, expected '= <key>: <text>': " + line);
            r.metadata.push_back({std::string(key), std::string(trim(rest.substr(colon + 1)))});
        }
    }
    if (in.bad()) throw std::runtime_error(cat("cannot read ", path, ": ", std::strerror(errno)));
    if (r.measures.empty()) throw std::runtime_error(path + ": no result lines ('@ <measure> <impl> <number>')");
    std::stable_sort(r.measures.begin(), r.measures.end(), [](const measure_results& a, const measure_results& b) {
        return measure_rank(a.info.id) < measure_rank(b.info.id);
    });
    for (measure_results& m : r.measures)
        std::stable_sort(m.impls.begin(), m.impls.end(),
                         [](const series& a, const series& b) { return impl_rank(a.impl) < impl_rank(b.impl); });
    for (measure_results& m : r.measures) m.reference = choose_reference(m);
    return r;
}

std::vector<target_outcome> evaluate_targets(const results& r) {
    std::vector<target_outcome> outcomes;
    for (const target& t : targets) {
        const auto found = std::find_if(r.measures.begin(), r.measures.end(),
                                        [&](const measure_results& m) { return m.info.id == t.measure; });
        const measure_results* m = found == r.measures.end() ? nullptr : &*found;
        const measure_info info = m ? m->info : info_for(t.measure);
        target_outcome outcome{target_outcome::not_measured, info.title, goal(t, info), ""};
        if (const auto measured = m ? measure(t, *m) : std::nullopt) {
            const bool met = t.direction == bound::at_most ? measured->value <= t.limit : measured->value >= t.limit;
            outcome.result = met ? target_outcome::met : target_outcome::missed;
            outcome.measured = measured->text;
        } else {
            outcome.measured = what_is_missing(t, m);
        }
        outcomes.push_back(std::move(outcome));
    }
    return outcomes;
}

}  // namespace report
