// bench_report's model of a results file (scripts/bench.sh): every benchmark's `@ measure impl
// value` lines grouped by measure and impl, the statistics over repetitions, the design's
// targets, and the number formats that the text, markdown and SVG renderings share.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace report {

// Joins pieces of text. (Rather than `"literal" + std::string`: GCC 12 at -O3 warns falsely
// inside that operator+, -Wrestrict, GCC bug 105651.)
template <class... Pieces>
std::string cat(const Pieces&... pieces) {
    std::string joined;
    (joined.append(std::string_view(pieces)), ...);
    return joined;
}

enum class better { lower, higher };

// What a measure is; the known ones come from a table in report_data.cpp.
struct measure_info {
    std::string id, title, unit;
    better direction = better::lower;
    std::string reference = "green";  // the impl the others are compared with, when present
};

struct summary {
    double median, min, max;
};

// A ratio between two impls: the median of the per-repetition ratios with their min and max when
// the two have as many values (the i-th ones ran in the same repetition, seconds apart); else
// the ratio of the medians, with min = max = median.
struct ratio {
    double median, min, max;
    bool paired;
};

// One impl's values for one measure, in the order the file gives them (one per repetition).
struct series {
    std::string impl;
    std::vector<double> values;
    summary stats() const;
};

struct measure_results {
    measure_info info;
    std::vector<series> impls;  // known impls in table order, then the others as they came
    std::string reference;      // the impl compared with; empty when no green impl was measured

    const series* find(std::string_view impl) const;
    // The impl's cost relative to the reference (reference = 1; above 1, the impl costs more):
    // impl / reference for a lower-is-better measure, reference / impl for a higher-is-better
    // one. None without a reference, or where a value is not positive.
    std::optional<ratio> relative_cost(const series& s) const;
};

struct metadata_line {
    std::string key, text;
};

struct results {
    std::vector<metadata_line> metadata;  // in file order; keys may repeat
    std::vector<measure_results> measures;  // known measures in table order, then the others
};

// Reads a results file. Throws std::runtime_error naming the file (and the line, for a
// malformed `@` or `=` line).
results read_results(const std::string& path);

// green and its variants (green-shared, green-curl, ...) against everyone else.
bool is_green(std::string_view impl);

std::optional<ratio> ratio_of(const series& numerator, const series& denominator);

// One of the design's targets, evaluated against a run.
struct target_outcome {
    enum state { met, missed, not_measured };
    state result;
    std::string measure_title;
    std::string goal;      // e.g. "green / fiber-raw ≤ 1.2×", "green ≤ 150 ns"
    std::string measured;  // e.g. "1.14× (1.10–1.20)"; for not_measured, what is missing
};

std::vector<target_outcome> evaluate_targets(const results& r);

// How a measure's values are shown: bytes in B, KiB or MiB by their size, everything else in the
// measure's own unit.
struct scale {
    double divisor;
    std::string unit;
};
scale scale_for(std::string_view unit, double magnitude);
scale scale_for(const measure_results& m);  // by the largest median

// Three significant digits, and whole numbers with thousands separators from 100 up:
// 11.2, 0.0312, 1,050, 160,676; a whole number stays whole (6, not 6.00).
std::string format_number(double value);
std::string format_value(double value, const scale& s);  // with the unit: "41.2 ns", "6.74 KiB"
std::string format_range(double min, double max, const scale& s);  // "10.9–11.5" (no unit)
std::string format_ratio(double r);                            // "0.92×", "18.0×", "250×"
std::string format_ratio_span(double min, double max);         // "1.95–2.30", or "" when they print alike
std::string format_ratio_range(const ratio& r);  // "2.10× (1.95–2.30)", "2.10×", "2.10× (of medians)"

// The renderings (report_tables.cpp, report_svg.cpp).
void print_report(std::ostream& out, const std::string& source, const results& r,
                  const std::vector<target_outcome>& targets);
// What goes between the page's markers; `svg_link` is the chart's path relative to the page.
std::string markdown_section(const results& r, const std::vector<target_outcome>& targets,
                             const std::string& svg_link);
std::string svg_chart(const results& r);

}  // namespace report
