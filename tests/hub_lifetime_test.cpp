// Lifetimes around the hub: tasks still running at thread exit are killed (their stacks unwind)
// by the thread's own hub, and nothing outlives the thread (the ASan build's leak check covers
// the "second hub" this once created); a source (an event) may be destroyed by the greenlet its
// link wakes (the ASan build catches the hub touching it afterwards).
#include <green/event.hpp>
#include <green/hub.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace std::chrono_literals;

namespace {
struct on_unwind {
    std::atomic<int>& count;
    ~on_unwind() { ++count; }
};
}  // namespace

TEST_CASE("thread exit kills the hub's tasks, unwinding their stacks") {
    std::atomic<int> unwound{0};
    std::atomic<int> links_fired{0};
    std::atomic<bool> killed_by_exit{false};
    std::atomic<bool> same_hub{false};
    std::atomic<green::hub*> hub{nullptr};  // outlives the thread's function, unlike its locals
    std::thread t([&] {
        hub = &green::get_hub();
        auto sleeper = green::spawn([&] {
            on_unwind guard{unwound};
            try {
                green::sleep(30s);
            } catch (const green::greenlet_exit& e) {
                killed_by_exit = std::string(e.what()).find("thread is exiting") != std::string::npos;
                // Killed by this thread's hub, not by a second one made during teardown.
                same_hub = &green::get_hub() == hub;
                throw;
            }
        });
        sleeper.rawlink([&](green::any_task) { ++links_fired; });
        green::spawn([&] {
            on_unwind guard{unwound};
            green::event never;
            never.wait();
        });
        green::sleep(10ms);  // both are waiting now
    });
    t.join();
    CHECK(unwound == 2);
    CHECK(killed_by_exit);
    CHECK(same_hub);
    CHECK(links_fired == 1);  // the task finished as a task: its links ran
}

TEST_CASE("a task may wait while it cleans up at thread exit") {
    std::atomic<bool> cleaned{false};
    std::thread t([&] {
        green::spawn([&] {
            try {
                green::sleep(30s);
            } catch (const green::greenlet_exit&) {
                green::sleep(5ms);  // the hub still runs for the tasks' cleanup
                cleaned = true;
                throw;
            }
        });
        green::sleep(10ms);
    });
    t.join();
    CHECK(cleaned);
}

TEST_CASE("an event may be destroyed by the greenlet it wakes") {
    auto e = std::make_unique<green::event>();
    green::event& ev = *e;
    bool other_woken = false;
    auto other = green::spawn([&] {
        ev.wait();  // links first
        other_woken = true;
    });
    green::sleep();  // `other` waits now
    green::spawn([&] { ev.set(); });
    ev.wait();  // links second: woken from inside the hub's firing of the links
    CHECK(other_woken);
    e.reset();          // done with it: the hub must not touch it again
    green::sleep(1ms);  // the hub finishes firing and goes on
    CHECK(other.ready());
}
