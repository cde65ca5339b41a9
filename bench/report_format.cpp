// Number formats shared by the text, markdown and SVG renderings: few digits, but enough to
// tell 1.14× from 1.2×.
#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace report {

namespace {

std::string with_thousands_separators(long long whole) {
    const std::string digits = std::to_string(whole);
    std::string grouped;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && digits[i - 1] != '-' && (digits.size() - i) % 3 == 0) grouped += ',';
        grouped += digits[i];
    }
    return grouped;
}

std::string fixed(double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

// Two decimals below 10, one below 100, none above.
std::string ratio_digits(double r) {
    if (r >= 99.95) return with_thousands_separators(std::llround(r));
    return fixed(r, r >= 9.995 ? 1 : 2);
}

}  // namespace

scale scale_for(std::string_view unit, double magnitude) {
    if (unit != "bytes") return {1, std::string(unit)};
    if (magnitude >= 1024 * 1024) return {1024 * 1024, "MiB"};
    if (magnitude >= 1024) return {1024, "KiB"};
    return {1, "B"};
}

scale scale_for(const measure_results& m) {
    double largest = 0;
    for (const series& s : m.impls) largest = std::max(largest, std::fabs(s.stats().median));
    return scale_for(m.info.unit, largest);
}

std::string format_number(double value) {
    const double magnitude = std::fabs(value);
    // Counts stay whole: 6, not 6.00.
    if (magnitude >= 99.95 || value == std::trunc(value)) return with_thousands_separators(std::llround(value));
    int decimals = std::clamp(2 - static_cast<int>(std::floor(std::log10(magnitude))), 0, 9);
    // 9.996 rounds up to 10.00: one digit too many.
    if (decimals > 0 && std::fabs(std::stod(fixed(value, decimals))) >= std::pow(10.0, 3 - decimals)) --decimals;
    return fixed(value, decimals);
}

std::string format_value(double value, const scale& s) {
    const std::string number = format_number(value / s.divisor);
    return s.unit.empty() ? number : number + " " + s.unit;
}

std::string format_range(double min, double max, const scale& s) {
    return format_number(min / s.divisor) + "–" + format_number(max / s.divisor);
}

std::string format_ratio(double r) { return ratio_digits(r) + "×"; }

std::string format_ratio_span(double min, double max) {
    const std::string low = ratio_digits(min), high = ratio_digits(max);
    return low == high ? "" : cat(low, "–", high);
}

std::string format_ratio_range(const ratio& r) {
    if (!r.paired) return cat(format_ratio(r.median), " (of medians)");
    const std::string span = format_ratio_span(r.min, r.max);
    return span.empty() ? format_ratio(r.median) : cat(format_ratio(r.median), " (", span, ")");
}

}  // namespace report
