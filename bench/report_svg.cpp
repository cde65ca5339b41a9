// The chart: per measure, one horizontal bar per impl, as long as its cost relative to green's on a
// log scale, so that 3× slower and 3× faster sit the same distance from green's 1×. A plain,
// self-contained SVG (no fonts, scripts or styles to fetch) that GitHub shows as an image.
#include "report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>

namespace report {

namespace {

constexpr double width = 800;
constexpr double margin = 16;
constexpr double plot_left = 156, plot_right = 724;  // impl ids to the left, ratios to the right
constexpr double bar_height = 16, bar_step = 22;
constexpr double group_title_height = 24, group_gap = 12;

constexpr const char* green_fill = "#2da44e";
constexpr const char* peer_fill = "#8c959f";
constexpr const char* ink = "#1f2328";
constexpr const char* muted = "#59636e";
constexpr const char* grid = "#d1d9e0";

// A coordinate: "12.5", "800".
std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", value);
    std::string_view digits = text;
    return std::string(digits.ends_with(".0") ? digits.substr(0, digits.size() - 2) : digits);
}

std::string xml_escape(std::string_view text) {
    std::string escaped;
    for (const char c : text) {
        switch (c) {
        case '&': escaped += "&amp;"; break;
        case '<': escaped += "&lt;"; break;
        case '>': escaped += "&gt;"; break;
        case '"': escaped += "&quot;"; break;
        default: escaped += c;
        }
    }
    return escaped;
}

// Powers of ten from a decade below the smallest relative cost (or below 1×, so that green's
// bars have a length) up to the largest, 10× at least.
struct log_axis {
    int low_exponent, high_exponent;

    double x(double r) const {
        const double span = high_exponent - low_exponent;
        return plot_left + (std::log10(r) - low_exponent) / span * (plot_right - plot_left);
    }

    // Decades, with 2× and 5× between them when there are few decades.
    std::vector<double> ticks() const {
        std::vector<double> at;
        for (int e = low_exponent; e <= high_exponent; ++e) {
            at.push_back(std::pow(10.0, e));
            if (e < high_exponent && high_exponent - low_exponent <= 2)
                for (const double step : {2.0, 5.0}) at.push_back(step * std::pow(10.0, e));
        }
        std::sort(at.begin(), at.end());
        return at;
    }
};

log_axis axis_for(const results& r) {
    double smallest = 1, largest = 1;
    for (const measure_results& m : r.measures)
        for (const series& s : m.impls)
            if (const auto cost = m.relative_cost(s)) {
                smallest = std::min(smallest, cost->min);
                largest = std::max(largest, cost->max);
            }
    return {static_cast<int>(std::floor(std::log10(smallest) - 0.05)),
            std::max(1, static_cast<int>(std::ceil(std::log10(largest))))};
}

// 0.1×, 1×, 20×: the shortest text for the number.
std::string tick_label(double value) {
    char digits[32];
    const auto written = std::to_chars(std::begin(digits), std::end(digits), value);
    return std::string(digits, written.ptr) + "×";
}

std::string text(double x, double y, std::string_view content, std::string_view attributes) {
    return cat("<text x=\"", number(x), "\" y=\"", number(y), "\" ", attributes, ">", content, "</text>\n");
}

std::string vertical_line(double x, double top, double bottom, std::string_view colour, double stroke) {
    return cat("<line x1=\"", number(x), "\" y1=\"", number(top), "\" x2=\"", number(x), "\" y2=\"", number(bottom),
               "\" stroke=\"", colour, "\" stroke-width=\"", number(stroke), "\"/>\n");
}

std::string square(double x, double y, double size, std::string_view fill) {
    return cat("<rect x=\"", number(x), "\" y=\"", number(y), "\" width=\"", number(size), "\" height=\"",
               number(size), "\" rx=\"2\" fill=\"", fill, "\"/>\n");
}

std::string axis_labels(const log_axis& axis, double y) {
    std::string out;
    for (const double tick : axis.ticks())
        out += text(axis.x(tick), y, tick_label(tick), cat("text-anchor=\"middle\" font-size=\"12\" fill=\"", muted, "\""));
    return out;
}

// A text element's look: its size and colour, then any other attributes.
std::string style(std::string_view size, std::string_view colour, std::string_view more = "") {
    return cat("font-size=\"", size, "\" fill=\"", colour, more.empty() ? "\"" : "\" ", more);
}

// One measure: its title with green's own median, then a bar per impl. Returns the height used.
double draw_group(std::string& out, const measure_results& m, const log_axis& axis, double top) {
    const std::string green_median = format_value(m.find(m.reference)->stats().median, scale_for(m));
    // The median as plain text after the tspan: a tspan that starts with a space loses it in librsvg.
    out += text(margin, top + 16,
                cat("<tspan font-weight=\"600\" fill=\"", ink, "\">", xml_escape(m.info.title), "</tspan> — ",
                    xml_escape(m.reference), " ", green_median),
                style("13.5", muted));

    const double bars_top = top + group_title_height;
    const double bars_bottom = bars_top + static_cast<double>(m.impls.size()) * bar_step - (bar_step - bar_height);
    for (const double tick : axis.ticks()) out += vertical_line(axis.x(tick), bars_top - 3, bars_bottom + 3, grid, 1);

    double y = bars_top;
    for (const series& s : m.impls) {
        const double middle = y + bar_height / 2;
        out += text(plot_left - 8, middle + 4.5, xml_escape(s.impl), style("12.5", ink, "text-anchor=\"end\""));
        if (const auto cost = m.relative_cost(s)) {
            const double end = axis.x(cost->median);
            out += cat("<rect x=\"", number(plot_left), "\" y=\"", number(y), "\" width=\"", number(end - plot_left),
                       "\" height=\"", number(bar_height), "\" rx=\"2\" fill=\"",
                       is_green(s.impl) ? green_fill : peer_fill, "\"/>\n");
            double label_x = end;
            if (cost->min != cost->max) {  // the per-run ratios' spread
                const double low = axis.x(cost->min), high = axis.x(cost->max);
                out += cat("<path d=\"M", number(low), " ", number(middle), "H", number(high), "M", number(low), " ",
                           number(middle - 4), "v8M", number(high), " ", number(middle - 4), "v8\" stroke=\"", ink,
                           "\" stroke-width=\"1.2\" fill=\"none\"/>\n");
                label_x = std::max(label_x, high);
            }
            label_x = std::max(label_x, axis.x(1));  // clear of the 1× line
            out += text(label_x + 6, middle + 4.5, format_ratio(cost->median), style("12.5", ink));
        } else {
            out += text(plot_left + 6, middle + 4.5, "n/a (a value ≤ 0)", style("12.5", muted, "font-style=\"italic\""));
        }
        y += bar_step;
    }
    // Drawn last, over the bars it crosses.
    out += vertical_line(axis.x(1), bars_top - 5, bars_bottom + 5, ink, 1.5);
    return group_title_height + static_cast<double>(m.impls.size()) * bar_step + group_gap;
}

}  // namespace

std::string svg_chart(const results& r) {
    const log_axis axis = axis_for(r);
    const std::string caption = xml_escape("green against its peers: each one's cost relative to green's, on a log scale");

    std::string body = text(margin, 26, "green against its peers", style("17", ink, "font-weight=\"600\""));
    body += text(margin, 46,
                 "Bar: the impl's cost relative to green's (green = 1×), log scale. Past the 1× line it costs more "
                 "than green.",
                 style("12.5", muted));
    body += text(margin, 63,
                 "Cost: time, memory or CPU per operation; for a rate, green's rate ÷ the impl's. Whisker: min–max "
                 "over the runs.",
                 style("12.5", muted));
    body += square(margin, 74, 11, green_fill);
    body += text(margin + 16, 84, "green and its variants", style("12.5", muted));
    body += square(margin + 170, 74, 11, peer_fill);
    body += text(margin + 186, 84, "peers", style("12.5", muted));

    double y = 118;
    body += axis_labels(axis, y - 6);
    for (const measure_results& m : r.measures)
        if (!m.reference.empty()) y += draw_group(body, m, axis, y);
    body += axis_labels(axis, y + 6);
    const double height = y + 20;

    return cat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"",
               number(width), "\" height=\"", number(height), "\" viewBox=\"0 0 ", number(width), " ", number(height),
               "\" role=\"img\" aria-label=\"", caption,
               "\" font-family=\"-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif\">\n",
               "<title>", caption, "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", body, "</svg>\n");
}

}  // namespace report
