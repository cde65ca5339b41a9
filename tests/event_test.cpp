// event and async_result lifetimes: what the hub may touch after waking a waiter.
#include <green/event.hpp>
#include <green/hub.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>

using namespace std::chrono_literals;

namespace {

bool waits_on_a_local_event() {
    green::event done;
    green::spawn([&] { done.set(); });
    return done.wait();  // woken by the hub while it fires the event's links
}

}  // namespace

TEST_CASE("a waiter may destroy the event that woke it while the hub is still firing its links") {
    CHECK(waits_on_a_local_event());
    char scribble[512];  // reuse the stack where the event was
    std::memset(scribble, 0x5a, sizeof scribble);
    asm volatile("" : : "r"(scribble) : "memory");
    green::sleep(1ms);  // the hub finishes firing; it must not touch the dead event
    CHECK(true);
}

TEST_CASE("the same with a second waiter still linked when the first destroys the event") {
    auto* e = new green::event;
    bool second_woken = false;
    auto first = green::spawn([&] {
        e->wait();
        delete e;
    });
    auto second = green::spawn([&] { second_woken = e->wait(10ms); });
    green::sleep();
    e->set();
    green::joinall({first, second});
    // Both links were taken off the event before the first fired, so the second still fires.
    CHECK(second_woken);
}
