// green::local: one value per greenlet (gevent's local).
#include <green/hub.hpp>
#include <green/local.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {
struct tracked {
    static inline int made = 0, destroyed = 0;
    std::string value;
    tracked() { ++made; }
    tracked(const tracked&) = delete;
    ~tracked() { ++destroyed; }
};
}  // namespace

TEST_CASE("each greenlet sees its own value, made on first access") {
    green::local<std::string> name;
    std::vector<std::string> seen;
    auto worker = [&](std::string mine, green::duration pause) {
        *name = mine;
        green::sleep(pause);  // the other task sets its own value meanwhile
        seen.push_back(*name);
    };
    green::joinall({green::spawn(worker, "x", 10ms), green::spawn(worker, "y", 20ms)});
    CHECK(seen == std::vector<std::string>{"x", "y"});
    CHECK_FALSE(name.has_value());  // main never touched it
    CHECK(name->empty());           // and now it has its own, fresh
}

TEST_CASE("values are made once per greenlet and destroyed when the greenlet finishes") {
    tracked::made = tracked::destroyed = 0;
    green::local<tracked> slot;
    std::vector<green::any_task> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(green::spawn([&slot, i] {
        slot->value = std::to_string(i);
        green::sleep();
        CHECK(slot->value == std::to_string(i));  // still the same object
    }));
    green::joinall(tasks);
    CHECK(tracked::made == 3);
    CHECK(tracked::destroyed == 3);
}

TEST_CASE("a custom initialiser runs in the greenlet that needs a value; reset drops it") {
    int calls = 0;
    green::local<int> counter([&] { return ++calls * 100; });
    CHECK(*counter == 100);
    *counter += 1;
    CHECK(*counter == 101);
    counter.reset();
    CHECK_FALSE(counter.has_value());
    CHECK(*counter == 200);
    CHECK(green::spawn([&] { return *counter; }).get() == 300);
}
