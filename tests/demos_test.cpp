// The demos whose output is exact, run as built, their stdout checked line by line against
// the table in the design (DESIGN.md, "Demos"). The timed ones print their timing on stderr,
// which is left alone; the test checks their wall time itself.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct run_result {
    std::vector<std::string> lines;  // stdout, split at newlines
    int status;                      // as pclose returns it: 0 when the demo exited with 0
    std::chrono::steady_clock::duration took;
};

run_result run_demo(const std::string& name) {
    const std::string path = std::string(GREEN_DEMOS_DIR) + "/" + name;
    const auto start = std::chrono::steady_clock::now();
    FILE* out = ::popen(path.c_str(), "r");
    REQUIRE_MESSAGE(out != nullptr, "cannot run ", path);
    std::string text;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) text.append(buf, n);
    run_result result{{}, ::pclose(out), {}};
    result.took = std::chrono::steady_clock::now() - start;
    for (std::size_t begin = 0, end; begin < text.size(); begin = end + 1) {
        end = text.find('\n', begin);
        if (end == std::string::npos) end = text.size();
        result.lines.push_back(text.substr(begin, end - begin));
    }
    return result;
}

}  // namespace

TEST_CASE("greenlet_switch prints 1 3 2 4") {
    run_result r = run_demo("greenlet_switch");
    CHECK(r.status == 0);
    CHECK(r.lines == std::vector<std::string>{
                         "1",
                         "3",
                         "2",
                         "4",
                     });
}

TEST_CASE("greenlet_eat_play: eat and play take turns, switch by switch") {
    run_result r = run_demo("greenlet_eat_play");
    CHECK(r.status == 0);
    CHECK(r.lines == std::vector<std::string>{
                         "egon eat 1",
                         "egon play 1",
                         "egon eat 2",
                         "egon play 2",
                     });
}

TEST_CASE("gevent_eat_play: play wakes first and the sleeps overlap (about 2 s not 3)") {
    run_result r = run_demo("gevent_eat_play");
    CHECK(r.status == 0);
    CHECK(r.lines == std::vector<std::string>{
                         "egon eat 1",
                         "egon play 1",
                         "egon play 2",
                         "egon eat 2",
                         "main",
                     });
    CHECK(r.took >= 2s);
    CHECK(r.took < 2800ms);
}

TEST_CASE("monkey_patch: plain ::sleep after patch_all() overlaps the same way (about 2 s not 3)") {
    run_result r = run_demo("monkey_patch");
    CHECK(r.status == 0);
    CHECK(r.lines == std::vector<std::string>{
                         "egon eat 1",
                         "egon play 1",
                         "egon play 2",
                         "egon eat 2",
                         "main",
                     });
    CHECK(r.took >= 2s);
    CHECK(r.took < 2800ms);
}
