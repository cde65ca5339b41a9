// The report as tables: aligned text for the terminal, GitHub markdown for docs/performance.md.
// Both render the same rows, so the page and the terminal never disagree.
#include "report.hpp"

#include <algorithm>
#include <ostream>

namespace report {

namespace {

using row = std::vector<std::string>;

// Columns are aligned by characters, not bytes: "–", "×" and "µ" take several bytes in UTF-8.
std::size_t display_width(std::string_view text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void print_aligned(std::ostream& out, const row& headings, const std::vector<row>& rows,
                   const std::vector<bool>& right_aligned) {
    std::vector<std::size_t> widths(headings.size());
    auto widen = [&](const row& r) {
        for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], display_width(r[i]));
    };
    widen(headings);
    for (const row& r : rows) widen(r);
    auto print = [&](const row& r) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            const std::string padding(widths[i] - display_width(r[i]), ' ');
            line += cat("  ", right_aligned[i] ? padding : "", r[i], right_aligned[i] ? "" : padding);
        }
        out << line.substr(0, line.find_last_not_of(' ') + 1) << '\n';
    };
    print(headings);
    for (const row& r : rows) print(r);
}

// Backslash-escapes what markdown would read as markup in text that comes from the results file.
std::string markdown_escape(std::string_view text) {
    std::string escaped;
    for (const char c : text) {
        if (std::string_view("\\`*_[]<>|").find(c) != std::string_view::npos) escaped += '\\';
        escaped += c;
    }
    return escaped;
}

void markdown_table(std::string& out, const row& headings, const std::vector<row>& rows,
                    const std::vector<bool>& right_aligned) {
    auto line = [&](const row& r) {
        out += "|";
        for (const std::string& cell : r) out += cat(" ", cell, " |");
        out += "\n";
    };
    line(headings);
    row rule;
    for (const bool right : right_aligned) rule.push_back(right ? "---:" : "---");
    line(rule);
    for (const row& r : rows) line(r);
}

// How green compares with this impl: "2.10× better (1.95–2.30)" where this impl costs 2.10×
// green's, "1.18× worse" where it costs 0.85× green's.
std::string green_versus(const measure_results& m, const series& s) {
    if (m.reference.empty()) return "";
    if (s.impl == m.reference) return "reference";
    const auto cost = m.relative_cost(s);
    if (!cost) return "n/a (a value ≤ 0)";
    const bool better = cost->median >= 1;
    const ratio factor = better ? *cost : ratio{1 / cost->median, 1 / cost->max, 1 / cost->min, cost->paired};
    std::string text = format_ratio(factor.median);
    if (text != "1.00×") text += better ? " better" : " worse";
    if (!factor.paired) text += " (of medians)";
    else if (const std::string span = format_ratio_span(factor.min, factor.max); !span.empty()) text += cat(" (", span, ")");
    return text;
}

// Under the results, on the terminal and on the page (where its line break is a space).
constexpr std::string_view how_to_read =
    "Median and min–max over the runs. green vs this: how many times better or worse green did than the\n"
    "impl, as the median of the per-run ratios with their min–max (\"of medians\": the ratio of the\n"
    "medians, where the two have different numbers of runs).\n";

const row measure_headings{"impl", "runs", "median", "min–max", "unit", "green vs this"};
const std::vector<bool> measure_alignment{false, true, true, true, false, false};

std::vector<row> measure_rows(const measure_results& m) {
    const scale sc = scale_for(m);
    std::vector<row> rows;
    for (const series& s : m.impls) {
        const summary st = s.stats();
        rows.push_back({s.impl, std::to_string(s.values.size()), format_number(st.median / sc.divisor),
                        format_range(st.min, st.max, sc), sc.unit, green_versus(m, s)});
    }
    return rows;
}

// What the measure's heading adds to its title: the direction, and the reference when it is not
// plain green.
std::string measure_note(const measure_results& m) {
    std::string note = m.info.direction == better::lower ? "lower is better" : "higher is better";
    if (m.reference.empty()) note += "; no green result to compare with";
    else if (m.reference != "green") note += cat("; green here is ", m.reference);
    return note;
}

std::string_view outcome_word(target_outcome::state s) {
    switch (s) {
    case target_outcome::met: return "met";
    case target_outcome::missed: return "missed";
    case target_outcome::not_measured: return "not measured";
    }
    return "";
}

}  // namespace

void print_report(std::ostream& out, const std::string& source, const results& r,
                  const std::vector<target_outcome>& targets) {
    out << "green benchmarks, from " << source << '\n';
    for (const metadata_line& meta : r.metadata) out << "  " << meta.key << ": " << meta.text << '\n';
    out << '\n' << how_to_read;
    for (const measure_results& m : r.measures) {
        out << '\n' << m.info.title << " — " << measure_note(m) << '\n';
        print_aligned(out, measure_headings, measure_rows(m), measure_alignment);
    }

    out << "\nTargets (a report, not a test)\n";
    std::vector<row> rows;
    int count[3] = {};
    for (const target_outcome& t : targets) {
        rows.push_back({std::string(outcome_word(t.result)), cat(t.measure_title, ": ", t.goal), t.measured});
        ++count[t.result];
    }
    print_aligned(out, {"result", "target", "measured"}, rows, {false, false, false});
    out << "  " << count[target_outcome::met] << " met, " << count[target_outcome::missed] << " missed, "
        << count[target_outcome::not_measured] << " not measured\n";
}

std::string markdown_section(const results& r, const std::vector<target_outcome>& targets,
                             const std::string& svg_link) {
    std::string out = "<!-- Written by bench_report (bench/report.cpp): edits between the markers are lost. -->\n\n";
    for (const metadata_line& meta : r.metadata)
        out += cat("- **", markdown_escape(meta.key), "**: ", markdown_escape(meta.text), "\n");
    if (!r.metadata.empty()) out += "\n";

    row headings = measure_headings;
    headings.insert(headings.begin(), "measure");
    std::vector<bool> alignment = measure_alignment;
    alignment.insert(alignment.begin(), false);
    std::vector<row> rows;
    for (const measure_results& m : r.measures) {
        const std::vector<row> impl_rows = measure_rows(m);
        for (std::size_t i = 0; i < impl_rows.size(); ++i) {
            row cells;
            cells.push_back(i == 0 ? cat("**", markdown_escape(m.info.title), "** — ", markdown_escape(measure_note(m)))
                                   : "");
            for (const std::string& cell : impl_rows[i]) cells.push_back(markdown_escape(cell));
            rows.push_back(std::move(cells));
        }
    }
    markdown_table(out, headings, rows, alignment);
    out += cat("\n", how_to_read, "\n");

    rows.clear();
    for (const target_outcome& t : targets) {
        const std::string result(outcome_word(t.result));
        rows.push_back({markdown_escape(cat(t.measure_title, ": ", t.goal)), markdown_escape(t.measured),
                        t.result == target_outcome::missed ? cat("**", result, "**") : result});
    }
    markdown_table(out, {"target", "measured", "result"}, rows, {false, false, false});
    out += cat("\n![green against its peers: each one's cost relative to green's, on a log scale](", svg_link, ")\n");
    return out;
}

}  // namespace report
