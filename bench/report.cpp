// bench_report: the report of a scripts/bench.sh run, from its results file (the benchmarks'
// `@ <measure> <impl> <value>` lines and the script's `= <key>: <text>` lines).
//
//     bench_report RESULTS [--markdown FILE] [--svg FILE]
//
// It prints a table per measure and the design's targets, met or missed. --markdown rewrites the
// part of FILE (docs/performance.md) between the lines <!-- bench:begin --> and <!-- bench:end -->
// and leaves the rest byte for byte; --svg writes the chart that page shows.
//
// Exit status: 0 when the report is out, targets missed or not (a report, not a test); 1 when a
// file cannot be read or written, or the results or the page are malformed (checked before
// anything is written); 2 on a usage error.
#include "report.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace {

using report::cat;

constexpr std::string_view usage = "usage: bench_report RESULTS [--markdown FILE] [--svg FILE]\n";
constexpr std::string_view begin_marker = "<!-- bench:begin -->";
constexpr std::string_view end_marker = "<!-- bench:end -->";

struct options {
    std::string results;
    std::optional<std::string> markdown, svg;
};

std::optional<options> parse_options(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--markdown" || arg == "--svg") {
            auto& file = arg == "--markdown" ? o.markdown : o.svg;
            if (file || i + 1 == argc) return std::nullopt;
            file = argv[++i];
        } else if (arg.starts_with("-") || !o.results.empty()) {
            return std::nullopt;
        } else {
            o.results = arg;
        }
    }
    if (o.results.empty()) return std::nullopt;
    return o;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    if (!(in && content << in.rdbuf())) throw std::runtime_error(cat("cannot read ", path, ": ", std::strerror(errno)));
    return content.str();
}

// Through a temporary file and a rename, so that a failed write leaves the old file whole.
void write_file(const std::string& path, const std::string& content) {
    const std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        if (!(out << content && out.flush()))
            throw std::runtime_error(cat("cannot write ", path, ": ", std::strerror(errno)));
    }
    std::error_code ignored;  // the page keeps its permissions; a new file gets the umask's
    if (fs::exists(path)) fs::permissions(temporary, fs::status(path).permissions(), ignored);
    fs::rename(temporary, path);
}

// The page with `section` in place of what was between its markers.
std::string spliced_page(const std::string& path, const std::string& section) {
    const std::string page = read_file(path);
    auto refuse = [&](std::string_view why) {
        return std::runtime_error(cat(path, ": ", why, "; the results go between a '", begin_marker,
                                      "' line and a '", end_marker, "' line (the file is unchanged)"));
    };
    const std::size_t begin = page.find(begin_marker), end = page.find(end_marker);
    if (begin == std::string::npos) throw refuse(cat("no ", begin_marker, " marker"));
    if (end == std::string::npos) throw refuse(cat("no ", end_marker, " marker"));
    if (page.find(begin_marker, begin + 1) != std::string::npos || page.find(end_marker, end + 1) != std::string::npos)
        throw refuse("more than one pair of markers");
    const std::size_t after_begin_line = page.find('\n', begin) + 1;
    if (end < begin || after_begin_line == 0 || after_begin_line > end)
        throw refuse("the markers must be in that order, on lines of their own");
    const std::size_t end_line = page.rfind('\n', end) + 1;
    return cat(std::string_view(page).substr(0, after_begin_line), section, std::string_view(page).substr(end_line));
}

// The chart's path as the page links it: relative to the page's folder.
std::string svg_link(const std::string& page, const std::optional<std::string>& svg) {
    if (!svg) return "performance.svg";
    const fs::path folder = fs::absolute(page).lexically_normal().parent_path();
    const fs::path link = fs::absolute(*svg).lexically_normal().lexically_relative(folder);
    return link.empty() ? fs::absolute(*svg).generic_string() : link.generic_string();
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse_options(argc, argv);
    if (!o) {
        std::cerr << usage;
        return 2;
    }
    try {
        const report::results r = report::read_results(o->results);
        const auto targets = report::evaluate_targets(r);
        // The page is checked before anything is written.
        const std::string page =
            o->markdown ? spliced_page(*o->markdown, report::markdown_section(r, targets, svg_link(*o->markdown, o->svg)))
                        : "";
        report::print_report(std::cout, o->results, r, targets);
        if (o->svg) {
            write_file(*o->svg, report::svg_chart(r));
            std::cout << "\nwrote the chart to " << *o->svg << '\n';
        }
        if (o->markdown) {
            write_file(*o->markdown, page);
            std::cout << (o->svg ? "" : "\n") << "wrote the results into " << *o->markdown << '\n';
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_report: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
