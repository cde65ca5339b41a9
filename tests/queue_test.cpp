// gevent.queue in C++: queue, lifo/priority/joinable queues and channel — put never yielding
// on room, FIFO getters and putters, queue_empty/queue_full on timeouts, kills while blocked,
// iteration, and the hub's rules.
#include <green/hub.hpp>
#include <green/queue.hpp>
#include <green/timeout.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using trace_t = std::vector<std::string>;

namespace {

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

TEST_CASE("the queue.hpp example: a bounded queue of optionals, ended by nullopt") {
    trace_t trace;
    green::queue<std::optional<int>> jobs(2);
    auto consumer = green::spawn([&] {
        for (int job : jobs) trace.push_back("got " + std::to_string(job));
    });
    for (int i = 0; i < 5; ++i) jobs.put(i);
    jobs.put(std::nullopt);
    consumer.join();
    CHECK(trace == trace_t{"got 0", "got 1", "got 2", "got 3", "got 4"});
    CHECK(jobs.empty());
}

TEST_CASE("put with room and get with an item never yield") {
    green::queue<int> q(2);
    bool other_ran = false;
    auto other = green::spawn([&] { other_ran = true; });
    q.put(1);
    q.put(2);
    CHECK(q.full());
    CHECK(q.get() == 1);
    q.put_nowait(3);
    CHECK(q.get_nowait() == 2);
    CHECK(q.peek() == 3);
    CHECK(q.qsize() == 1);
    CHECK_FALSE(other_ran);
    other.join();
}

TEST_CASE("maxsize <= 0 means unbounded") {
    for (std::ptrdiff_t maxsize : {0, -1}) {
        green::queue<int> q(maxsize);
        CHECK_FALSE(q.maxsize());
        for (int i = 0; i < 1000; ++i) q.put(i);
        CHECK_FALSE(q.full());
        CHECK(q.qsize() == 1000);
    }
    CHECK(green::queue<int>(3).maxsize() == 3u);
}

TEST_CASE("timeouts: get throws queue_empty, put throws queue_full, and neither leaves a trace") {
    green::queue<std::string> q(1);
    auto start = clock_type::now();
    CHECK_THROWS_WITH_AS(q.get(30ms), "queue::get: no item within the timeout", green::queue_empty);
    CHECK(seconds_since(start) >= 0.025);
    CHECK_THROWS_WITH_AS(q.get_nowait(), "queue::get: the queue is empty", green::queue_empty);
    CHECK_THROWS_WITH_AS(q.peek_nowait(), "queue::peek: the queue is empty", green::queue_empty);
    q.put("kept");
    CHECK_THROWS_WITH_AS(q.put_nowait("x"), "queue::put: the queue is full", green::queue_full);
    start = clock_type::now();
    CHECK_THROWS_WITH_AS(q.put("y", 30ms), "queue::put: no room within the timeout", green::queue_full);
    CHECK(seconds_since(start) >= 0.025);
    CHECK(q.qsize() == 1);
    CHECK(q.get() == "kept");
    // The timed-out putter is gone: nothing more arrives.
    green::sleep();
    CHECK(q.empty());
}

TEST_CASE("blocked getters are served in the order they came") {
    green::queue<std::string> q;
    trace_t trace;
    std::vector<green::any_task> getters;
    for (int i = 0; i < 3; ++i)
        getters.push_back(green::spawn([&, i] { trace.push_back("g" + std::to_string(i) + " " + q.get()); }));
    green::sleep();
    q.put("a");
    q.put("b");
    q.put("c");
    CHECK(trace.empty());  // woken after this greenlet yields
    green::joinall(getters);
    CHECK(trace == trace_t{"g0 a", "g1 b", "g2 c"});
}

TEST_CASE("blocked putters are let in the order they came, as room is made") {
    green::queue<int> q(1);
    q.put(0);
    trace_t trace;
    std::vector<green::any_task> putters;
    for (int i = 1; i <= 3; ++i)
        putters.push_back(green::spawn([&, i] {
            q.put(i);
            trace.push_back("put " + std::to_string(i));
        }));
    green::sleep();
    std::vector<int> got;
    for (int i = 0; i < 4; ++i) got.push_back(q.get());
    green::joinall(putters);
    CHECK(got == std::vector<int>{0, 1, 2, 3});
    CHECK(trace == trace_t{"put 1", "put 2", "put 3"});
}

TEST_CASE("a getter killed while blocked leaves; the item goes to the next getter") {
    green::queue<int> q;
    trace_t trace;
    auto getter = [&](std::string name) {
        return green::spawn([&, name] {
            try {
                trace.push_back(name + " got " + std::to_string(q.get()));
            } catch (const green::greenlet_exit&) {
                trace.push_back(name + " killed");
                throw;
            }
        });
    };
    auto a = getter("a");
    auto b = getter("b");
    green::sleep();
    a.kill({.block = false});  // lands before the hand-over scheduled by put
    q.put(7);
    green::joinall({a, b});
    CHECK(trace == trace_t{"a killed", "b got 7"});
    CHECK(q.empty());
}

TEST_CASE("a putter killed while blocked leaves without adding its item") {
    green::queue<int> q(1);
    q.put(1);
    auto p = green::spawn([&] { q.put(2); });
    auto r = green::spawn([&] { q.put(3); });
    green::sleep();
    p.kill();
    CHECK(q.get() == 1);
    CHECK(q.get() == 3);
    r.join();
    CHECK(q.empty());
}

TEST_CASE("a timeout thrown into a blocked getter leaves the queue consistent") {
    green::queue<int> q;
    auto timed = green::spawn([&] {
        green::timeout limit(10ms);
        CHECK_THROWS_AS(q.get(), green::timeout_error);
    });
    auto patient = green::spawn([&] { return q.get(); });
    timed.join();
    q.put(5);
    CHECK(patient.get() == 5);
}

TEST_CASE("peek waits for an item and leaves it there") {
    green::queue<int> q;
    auto peeker = green::spawn([&] { return q.peek(); });
    auto getter = green::spawn([&] { return q.get(); });
    green::sleep();
    q.put(9);
    CHECK(peeker.get() == 9);
    CHECK(getter.get() == 9);  // the peeker did not take it
    CHECK(q.empty());
}

TEST_CASE("move-only items") {
    green::queue<std::unique_ptr<int>> q(1);
    q.put(std::make_unique<int>(4));
    auto putter = green::spawn([&] { q.put(std::make_unique<int>(5)); });
    green::sleep();
    CHECK(*q.get() == 4);
    CHECK(*q.get() == 5);
    putter.join();
    green::channel<std::unique_ptr<int>> ch;
    green::spawn([&] { ch.put(std::make_unique<int>(6)); });
    CHECK(*ch.get() == 6);
}

TEST_CASE("lifo_queue and priority_queue orders") {
    green::lifo_queue<int> lifo;
    green::priority_queue<int> smallest_first;
    green::priority_queue<std::pair<int, std::string>> by_priority;
    green::priority_queue<int, std::greater<int>> largest_first;
    for (int x : {5, 1, 3, 4}) {
        lifo.put(x);
        smallest_first.put(x);
        largest_first.put(x);
    }
    by_priority.put({2, "two"});
    by_priority.put({1, "one"});
    by_priority.put({3, "three"});
    std::vector<int> a, b, c;
    for (int i = 0; i < 4; ++i) {
        a.push_back(lifo.get());
        b.push_back(smallest_first.get());
        c.push_back(largest_first.get());
    }
    CHECK(a == std::vector<int>{4, 3, 1, 5});
    CHECK(b == std::vector<int>{1, 3, 4, 5});
    CHECK(c == std::vector<int>{5, 4, 3, 1});
    CHECK(by_priority.peek().second == "one");
    CHECK(by_priority.get().second == "one");
    CHECK(by_priority.get().second == "two");
}

TEST_CASE("iterating a plain queue goes on until the loop is left") {
    green::queue<int> q;
    for (int i = 0; i < 3; ++i) q.put(i);
    std::vector<int> seen;
    for (int x : q) {
        seen.push_back(x);
        if (x == 2) break;
    }
    CHECK(seen == std::vector<int>{0, 1, 2});
    // A worker iterating forever is stopped by a kill.
    auto worker = green::spawn([&] {
        for (int x : q) seen.push_back(x);
    });
    q.put(3);
    green::sleep();
    worker.kill();
    CHECK(seen == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("joinable_queue: join waits for task_done of every item") {
    green::joinable_queue<int> work;
    CHECK(work.join(0s));
    trace_t trace;
    auto worker = green::spawn([&] {
        for (int item : work) {
            green::sleep(std::chrono::milliseconds(5 * item));
            trace.push_back("done " + std::to_string(item));
            work.task_done();
        }
    });
    work.put(1);
    work.put(2);
    CHECK(work.unfinished_tasks() == 2);
    CHECK_FALSE(work.join(1ms));
    CHECK(work.join());
    CHECK(trace == trace_t{"done 1", "done 2"});
    CHECK(work.unfinished_tasks() == 0);
    CHECK_THROWS_WITH_AS(work.task_done(), "joinable_queue::task_done: called more times than items were put",
                         green::error);
    worker.kill();
    CHECK_THROWS_AS(work.join(-1s), green::error);
}

TEST_CASE("joinable_queue counts items let in from blocked putters") {
    green::joinable_queue<int> q(1);
    q.put(1);
    auto putter = green::spawn([&] { q.put(2); });
    green::sleep();
    CHECK(q.unfinished_tasks() == 1);
    q.get();
    green::sleep();
    CHECK(q.unfinished_tasks() == 2);
    putter.join();
}

TEST_CASE("channel: put returns once a getter took the item; balance counts the waiting") {
    green::channel<std::string> ch;
    trace_t trace;
    auto putter = green::spawn([&] {
        ch.put("ping");
        trace.push_back("put returned");
    });
    green::sleep();
    CHECK(ch.balance() == 1);
    trace.push_back("get -> " + ch.get());  // a putter waits: taken at once
    CHECK(ch.balance() == 0);
    putter.join();
    CHECK(trace == trace_t{"get -> ping", "put returned"});

    auto getter1 = green::spawn([&] { return ch.get(); });
    auto getter2 = green::spawn([&] { return ch.get(); });
    green::sleep();
    CHECK(ch.balance() == -2);
    ch.put("first");  // waits until getter1 took it
    CHECK(getter1.ready());
    ch.put("second");
    CHECK(getter1.get() == "first");
    CHECK(getter2.get() == "second");
    CHECK(ch.qsize() == 0);
    CHECK(ch.empty());
    CHECK(ch.full());
}

TEST_CASE("channel timeouts and nowait") {
    green::channel<int> ch;
    bool other_ran = false;
    auto other = green::spawn([&] { other_ran = true; });
    CHECK_THROWS_WITH_AS(ch.put_nowait(1), "channel::put: no getter is waiting", green::queue_full);
    CHECK_THROWS_WITH_AS(ch.get_nowait(), "channel::get: no putter is waiting", green::queue_empty);
    CHECK_FALSE(other_ran);  // neither yielded
    other.join();
    CHECK_THROWS_WITH_AS(ch.put(1, 10ms), "channel::put: no getter took the item within the timeout",
                         green::queue_full);
    CHECK_THROWS_WITH_AS(ch.get(10ms), "channel::get: no item within the timeout", green::queue_empty);
    CHECK(ch.balance() == 0);

    // put_nowait with a getter waiting hands the item over (yielding once for it).
    auto getter = green::spawn([&] { return ch.get(); });
    green::sleep();
    ch.put_nowait(2);
    CHECK(getter.get() == 2);

    // get_nowait with a putter waiting takes its item without yielding.
    auto putter = green::spawn([&] { ch.put(3); });
    green::sleep();
    CHECK(ch.get_nowait() == 3);
    putter.join();
}

TEST_CASE("channel: put_nowait fails, and keeps its item, when its getter leaves before the hand-over") {
    green::channel<int> ch;
    auto getter = green::spawn([&] { return ch.get(); });
    green::sleep();
    getter.kill({.block = false});  // runs before the hand-over
    CHECK_THROWS_WITH_AS(ch.put_nowait(1), "channel::put: no getter is waiting", green::queue_full);
    CHECK(getter.dead());
    CHECK(ch.balance() == 0);
}

TEST_CASE("channel: a getter killed while waiting leaves; a putter waits for the next one") {
    green::channel<int> ch;
    auto a = green::spawn([&] { return ch.get(); });
    auto b = green::spawn([&] { return ch.get(); });
    green::sleep();
    a.kill();
    ch.put(8);
    CHECK(b.get() == 8);
    CHECK(ch.balance() == 0);
}

TEST_CASE("channel iteration of optionals ends at nullopt") {
    green::channel<std::optional<std::string>> ch;
    green::spawn([&] {
        ch.put("a");
        ch.put("b");
        ch.put(std::nullopt);
    });
    trace_t seen;
    for (const std::string& s : ch) seen.push_back(s);
    CHECK(seen == trace_t{"a", "b"});
}

TEST_CASE("in the hub, queue calls never wait: they run the waiting greenlets at once, or throw") {
    trace_t trace;
    green::queue<int> q(1);
    // Full, with a getter not yet woken: put_nowait runs the getter now to make room.
    auto getter = green::spawn([&] { trace.push_back("getter got " + std::to_string(q.get())); });
    green::sleep();
    green::get_hub().run_callback([&] {
        q.put_nowait(2);
        trace.push_back("hub put_nowait 2 returned");
        try {
            q.put(3);
        } catch (const green::blocking_switch_error&) {
            trace.push_back("hub put on a full queue -> blocking_switch_error");
        }
        try {
            q.put_nowait(3);
        } catch (const green::queue_full&) {
            trace.push_back("hub put_nowait on a full queue -> queue_full");
        }
    });
    q.put(1);  // the getter's wake-up is queued behind the callback
    getter.join();
    CHECK(trace == trace_t{"getter got 1", "hub put_nowait 2 returned", "hub put on a full queue -> blocking_switch_error",
                           "hub put_nowait on a full queue -> queue_full"});

    // Empty, with a putter not yet let in: get_nowait lets it in now.
    trace.clear();
    auto putter = green::spawn([&] {
        q.put(5);
        trace.push_back("putter returned");
    });
    green::sleep();
    green::get_hub().run_callback([&] {
        trace.push_back("hub get_nowait " + std::to_string(q.get_nowait()));
        try {
            q.get();
        } catch (const green::blocking_switch_error&) {
            trace.push_back("hub get on an empty queue -> blocking_switch_error");
        }
        try {
            q.get_nowait();
        } catch (const green::queue_empty&) {
            trace.push_back("hub get_nowait on an empty queue -> queue_empty");
        }
    });
    CHECK(q.get() == 2);  // makes room; the putter's turn is queued behind the callback
    putter.join();
    CHECK(trace == trace_t{"putter returned", "hub get_nowait 5", "hub get on an empty queue -> blocking_switch_error",
                           "hub get_nowait on an empty queue -> queue_empty"});
}

TEST_CASE("in the hub, a channel hands over to a waiting getter at once") {
    green::channel<int> ch;
    auto getter = green::spawn([&] { return ch.get(); });
    green::sleep();
    bool getter_done_in_hub = false;
    green::get_hub().run_callback([&] {
        ch.put_nowait(11);
        getter_done_in_hub = getter.ready();
        try {
            ch.put(12);
        } catch (const green::blocking_switch_error&) {
        }
    });
    CHECK(getter.get() == 11);
    CHECK(getter_done_in_hub);
}

TEST_CASE("a getter may destroy the queue that woke it") {
    auto* q = new green::queue<int>;
    auto owner = green::spawn([&] {
        int v = q->get();
        delete q;
        q = nullptr;
        return v;
    });
    auto other = green::spawn([&] { q->get(); });
    green::sleep();
    q->put(1);
    q->put(2);
    CHECK(owner.get() == 1);
    CHECK_FALSE(other.ready());
    other.kill();
}

TEST_CASE("misuse: negative timeouts; waiting with nobody to put is loop_exit") {
    green::queue<int> q;
    CHECK_THROWS_WITH_AS(q.get(-1ms), "queue::get: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(q.put(1, -1ms), "queue::put: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(q.peek(-1ms), "queue::peek: negative timeout", green::error);
    green::channel<int> ch;
    CHECK_THROWS_WITH_AS(ch.get(-1ms), "channel::get: negative timeout", green::error);
    CHECK_THROWS_WITH_AS(ch.put(1, -1ms), "channel::put: negative timeout", green::error);
    green::queue<int> nobody;
    try {
        nobody.get();
        FAIL("no loop_exit");
    } catch (const green::loop_exit& e) {
        CHECK(std::string(e.what()).find("queue::get") != std::string::npos);
    }
}
