// green::value: Python's packing rule, repr, and checked reads.
#include <green/value.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using green::value;

namespace {
struct ValueError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct opaque {
    int x;
};
}  // namespace

TEST_CASE("the packing rule: none, one, several") {
    CHECK(value::of().empty());
    CHECK(value::of().size() == 0);
    CHECK(green::repr(value::of()) == "()");
    CHECK(value::of(5).size() == 1);
    CHECK(green::repr(value::of(5)) == "5");
    CHECK(value::of(5, 6).size() == 2);
    CHECK(green::repr(value::of(5, 6)) == "(5, 6)");
    // The receiver cannot tell switch_to(std::tuple{1, 2}) from switch_to(1, 2), as in Python.
    CHECK(green::repr(value::of(std::tuple{1, 2})) == green::repr(value::of(1, 2)));
    CHECK(green::repr(value::of(std::tuple{1})) == "(1,)");
    CHECK(green::repr(value::of(std::tuple<>{})) == "()");
}

TEST_CASE("repr matches Python's for the basic types") {
    CHECK(green::repr(value::of(true)) == "True");
    CHECK(green::repr(value::of(false)) == "False");
    CHECK(green::repr(value::of(green::none)) == "None");
    CHECK(green::repr(value::of("s")) == "'s'");
    CHECK(green::repr(value::of(std::string("it's"))) == "\"it's\"");
    CHECK(green::repr(value::of(std::string("a\nb\\"))) == "'a\\nb\\\\'");
    CHECK(green::repr(value::of(0.05)) == "0.05");
    CHECK(green::repr(value::of(1.0)) == "1.0");
    CHECK(green::repr(value::of(-2.5)) == "-2.5");
    CHECK(green::repr(value::of(1e16)) == "1e+16");
    CHECK(green::repr(value::of(1e-5)) == "1e-05");
    CHECK(green::repr(value::of(123456789012345678.0)) == "1.2345678901234568e+17");
    CHECK(green::repr(value::of(std::vector<int>{1, 2, 3})) == "[1, 2, 3]");
    CHECK(green::repr(value::of(std::make_tuple(std::tuple{1, 2}))) == "((1, 2),)");
    CHECK(green::repr(value::of(std::optional<int>{})) == "None");
    CHECK(green::repr(value::of(std::make_exception_ptr(ValueError("boom")))) == "ValueError('boom')");
    CHECK(green::repr(value::of(std::make_exception_ptr(green::greenlet_exit()))) == "GreenletExit()");
    CHECK(green::repr(value::of(opaque{1})) == "<value of type opaque>");
}

TEST_CASE("string literals, char pointers and string_views arrive as std::string") {
    const char* p = "ptr";
    std::string_view sv = "view";
    CHECK(value::of("lit").get<std::string>() == "lit");
    CHECK(value::of(p).get<std::string>() == "ptr");
    CHECK(value::of(sv).get<std::string>() == "view");
}

TEST_CASE("get checks the count and the type and names both") {
    auto v = value::of(1, std::string("x"));
    auto [n, s] = v.get<int, std::string>();
    CHECK(n == 1);
    CHECK(s == "x");
    CHECK_THROWS_WITH_AS(v.get<int>(), "green::value: expected 1 value, got 2 values of types std::tuple<int, std::string>",
                         green::type_error);
    CHECK_THROWS_WITH_AS(value::of(std::string("x")).get<int>(),
                         "green::value: expected a value of type int, got std::string", green::type_error);
    CHECK_THROWS_WITH_AS(value::of().get<int>(), "green::value: expected 1 value, got none", green::type_error);
    CHECK_THROWS_AS((value::of(1).get<int, int>()), green::type_error);
}

TEST_CASE("numbers convert when the value fits") {
    CHECK(value::of(42).get<long>() == 42);
    CHECK(value::of(42).get<double>() == 42.0);
    CHECK(value::of(200).get<unsigned char>() == 200);
    CHECK_THROWS_AS(value::of(300).get<unsigned char>(), green::type_error);
    CHECK_THROWS_AS(value::of(-1).get<unsigned>(), green::type_error);
    CHECK_THROWS_AS(value::of(1.5).get<int>(), green::type_error);  // no silent truncation
    CHECK_THROWS_AS(value::of(true).get<int>(), green::type_error);
}

TEST_CASE("tuples read either way") {
    CHECK(value::of(1, 2).get<std::tuple<int, int>>() == std::tuple{1, 2});
    CHECK(value::of(std::tuple{1, 2}).get<int, int>() == std::tuple{1, 2});
}

TEST_CASE("move-only values move through, and refuse to be copied") {
    auto v = value::of(std::make_unique<int>(7));
    CHECK_THROWS_AS(value{v}, green::type_error);
    auto p = std::move(v).get<std::unique_ptr<int>>();
    CHECK(*p == 7);
}

TEST_CASE("big values live on the heap and copy and move correctly") {
    std::vector<std::string> big(10, std::string(100, 'x'));
    auto v = value::of(big, big, big);
    value copy = v;
    value moved = std::move(v);
    CHECK(v.empty());
    CHECK(std::get<0>(copy.get<std::vector<std::string>, std::vector<std::string>, std::vector<std::string>>()) == big);
    CHECK(moved.size() == 3);
}

TEST_CASE("an exception held as a value reads back as its type") {
    auto v = value::of(std::make_exception_ptr(green::greenlet_exit("bye")));
    CHECK(v.holds<green::greenlet_exit>());
    CHECK(std::string(v.get<green::greenlet_exit>().what()) == "bye");
    CHECK_FALSE(v.holds<std::exception>());
}
