// Support for the oracle tests: C++ ports of the Python programs under tests/oracle/, whose
// output must match the recorded .expected output line by line.
//
// A port prints with `say`, which formats its arguments like Python's print(): separated by a
// space, strings as they are, bools as True/False. What a Python line prints with repr(), the
// port prints with green::repr().
//
// Where a C++ port cannot produce a line (a Python-only feature) or produces it with a
// different message, the test lists it as an omission or a substitution, each with a comment
// saying why; every other line must match exactly.
#pragma once

#include <green/value.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace oracle {

class trace {
public:
    template <class... A>
    void operator()(const A&... args) {
        int i = 0;
        ((out_ << (i++ ? " " : ""), put(args)), ...);
        out_ << '\n';
    }
    std::string str() const { return out_.str(); }

private:
    template <class T>
    void put(const T& x) {
        if constexpr (std::is_same_v<T, bool>)
            out_ << (x ? "True" : "False");
        else if constexpr (std::is_floating_point_v<T>)
            green::detail::repr_float(out_, x);
        else
            out_ << x;
    }
    std::ostringstream out_;
};

struct substitution {
    std::string python;  // the line in the .expected file
    std::string cpp;     // what the C++ port prints instead
};

inline std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

inline std::string expected_output(std::string_view suite, std::string_view name) {
    std::string path = std::string(GREEN_ORACLE_DIR) + "/" + std::string(suite) + "/" + std::string(name) + ".expected";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Checks a port's output against the recorded one.
inline void compare(const trace& actual, std::string_view suite, std::string_view name,
                    const std::vector<std::string>& omitted = {}, const std::vector<substitution>& substitutions = {}) {
    std::vector<std::string> want;
    std::vector<std::string> unused_omissions = omitted;
    for (std::string line : lines(expected_output(suite, name))) {
        bool skip = false;
        for (auto it = unused_omissions.begin(); it != unused_omissions.end(); ++it) {
            if (*it == line) {
                unused_omissions.erase(it);
                skip = true;
                break;
            }
        }
        if (skip) continue;
        for (const auto& s : substitutions)
            if (s.python == line) line = s.cpp;
        want.push_back(line);
    }
    CHECK_MESSAGE(unused_omissions.empty(), "an omitted line is not in " << name << ".expected");
    std::vector<std::string> got = lines(actual.str());
    for (std::size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
        const std::string w = i < want.size() ? want[i] : "<no more lines>";
        const std::string g = i < got.size() ? got[i] : "<no more lines>";
        CHECK_MESSAGE(g == w, name << " line " << i + 1);
    }
}

}  // namespace oracle
