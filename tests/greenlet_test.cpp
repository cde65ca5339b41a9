// Layer 1 unit tests: value passing, unwinding, parents, threads, tracing.
#include <green/greenlet.hpp>

#include <doctest/doctest.h>

#include <sstream>
#include <string>

using green::greenlet;

TEST_CASE("func1/func2 prints 1 3 2 4") {
    std::ostringstream out;
    greenlet gr1, gr2;
    gr1.set_run([&] {
        out << 1 << '\n';
        gr2.switch_to();
        out << 2 << '\n';
        gr2.switch_to();
    });
    gr2.set_run([&] {
        out << 3 << '\n';
        gr1.switch_to();
        out << 4 << '\n';
    });
    green::value r = gr1.switch_to();
    CHECK(out.str() == "1\n3\n2\n4\n");
    CHECK(green::repr(r) == "None");
    CHECK(gr2.dead());
    CHECK_FALSE(gr1.dead());
    CHECK(bool(gr1));
}
