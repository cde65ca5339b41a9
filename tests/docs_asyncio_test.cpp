// The examples of docs/asyncio.md, compiled and run. Each example sits between a
// `// [doc: NAME]` line and a `// [/doc]` line, and docs/asyncio.md shows the same lines (less
// their indentation) in the code block after `<!-- doc: NAME -->`. The last test case compares
// the two files, so the doc cannot drift from code that compiles and does what it says.
#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/lock.hpp>
#include <green/threadpool.hpp>
#include <green/timeout.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Keeps the hub's failure reports ("task-N failed with ...") off stderr for one test.
struct quiet_hub {
    green::hub::error_handler previous =
        green::get_hub().set_error_handler([](std::string_view, std::exception_ptr) {});
    ~quiet_hub() { green::get_hub().set_error_handler(previous); }
};

}  // namespace

// [doc: fetch]
// Stands for any I/O: waits `delay` (other greenlets run meanwhile), then returns `name`.
std::string fetch(std::string name, green::duration delay) {
    green::sleep(delay);
    return name;
}
// [/doc]

// [doc: await]
// async def fetch_both(): return await fetch("a", 0.01) + await fetch("b", 0.01)
std::string fetch_both() {
    return fetch("a", 10ms) + fetch("b", 10ms);  // each call waits where it stands
}
// [/doc]

TEST_CASE("the event loop is the hub") {
    // [doc: loop]
    auto t = green::spawn(fetch, "page", 10ms);  // asyncio.create_task(fetch("page", 0.01))
    std::string page = t.get();                  // loop.run_until_complete(t): main waits, the hub runs

    std::vector<std::string> calls;
    green::get_hub().run_callback([&] { calls.push_back("soon"); });  // loop.call_soon(fn)
    green::sleep();                                                   // await asyncio.sleep(0)
    // [/doc]
    CHECK(page == "page");
    CHECK(calls == std::vector<std::string>{"soon"});
}

TEST_CASE("await is a plain call in a greenlet") {
    // [doc: await-call]
    auto t = green::spawn(fetch_both);  // a task, like any other function
    std::string both = t.get();         // "ab", after about 20 ms: the two waits run in turn
    std::string direct = fetch_both();  // main may wait too: no event loop to enter first
    // [/doc]
    CHECK(both == "ab");
    CHECK(direct == "ab");
}

TEST_CASE("create_task is spawn") {
    // [doc: task]
    std::vector<std::string> log;
    auto t = green::spawn([&] {  // asyncio.create_task(coro()) / ensure_future
        log.push_back("task runs");
        return 42;
    });
    log.push_back("spawned");      // the task has not run yet: it starts when this greenlet waits
    bool done_before = t.ready();  // t.done(): false
    int result = t.get();          // await t: 42
    bool done_after = t.ready();   // true
    // [/doc]
    CHECK(log == std::vector<std::string>{"spawned", "task runs"});
    CHECK_FALSE(done_before);
    CHECK(result == 42);
    CHECK(done_after);
}

TEST_CASE("gather is joinall, then get") {
    // [doc: gather]
    std::vector<green::task<std::string>> tasks{green::spawn(fetch, "slow", 50ms), green::spawn(fetch, "fast", 10ms)};
    green::joinall({tasks.begin(), tasks.end()}, {.raise_error = true});  // await asyncio.gather(*tasks)
    std::vector<std::string> results;
    for (const auto& t : tasks) results.push_back(t.get());  // {"slow", "fast"}: in the order given
    // [/doc]
    CHECK(results == std::vector<std::string>{"slow", "fast"});
}

TEST_CASE("gather with return_exceptions") {
    quiet_hub quiet;
    // [doc: gather-exceptions]
    auto ok = green::spawn(fetch, "ok", 10ms);
    auto bad = green::spawn([]() -> std::string { throw std::runtime_error("no route"); });
    green::joinall({ok, bad});                   // gather(ok, bad, return_exceptions=True): never raises
    std::exception_ptr error = bad.exception();  // the failure; ok.exception() is null
    std::string value = ok.get();                // "ok"; bad.get() would rethrow "no route"
    // [/doc]
    CHECK(ok.exception() == nullptr);
    REQUIRE(error != nullptr);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(error), "no route", std::runtime_error);
    CHECK(value == "ok");
}

TEST_CASE("wait's return_when is joinall's options") {
    quiet_hub quiet;
    // [doc: wait]
    std::vector<green::any_task> tasks{green::spawn(fetch, "slow", 200ms), green::spawn(fetch, "fast", 10ms)};

    // done, pending = await asyncio.wait(tasks, return_when=FIRST_COMPLETED)
    std::vector<green::any_task> done = green::joinall(tasks, {.count = 1});  // {fast}

    // ALL_COMPLETED, with timeout=0.05: what is done by then; nothing is cancelled
    done = green::joinall(tasks, {.timeout = 50ms});  // {fast}
    std::vector<green::any_task> pending;
    for (const auto& t : tasks)
        if (!t.ready()) pending.push_back(t);  // {slow}, still running

    // ALL_COMPLETED
    done = green::joinall(tasks);  // {fast, slow}: in the order they finished

    // FIRST_EXCEPTION: raises the first failure instead of returning it
    auto failing = green::spawn([] { throw std::runtime_error("boom"); });
    std::string first_failure;
    try {
        green::joinall({green::spawn(fetch, "slow", 200ms), failing}, {.raise_error = true});
    } catch (const std::runtime_error& e) {
        first_failure = e.what();  // "boom", after about 0 ms: the slow one keeps running
    }
    // [/doc]
    REQUIRE(pending.size() == 1);
    CHECK(pending[0] == tasks[0]);
    REQUIRE(done.size() == 2);
    CHECK(done[0] == tasks[1]);
    CHECK(done[1] == tasks[0]);
    CHECK(first_failure == "boom");
    green::wait();  // lets the second slow fetch finish before the next test
}

TEST_CASE("as_completed is iwait") {
    // [doc: as-completed]
    std::vector<green::task<std::string>> tasks{green::spawn(fetch, "slow", 50ms), green::spawn(fetch, "fast", 10ms)};
    std::vector<std::string> order;
    auto as_completed = green::iwait({tasks.begin(), tasks.end()});  // asyncio.as_completed(tasks)
    for (auto it = as_completed.begin(); it != as_completed.end(); ++it)
        order.push_back(tasks[as_completed.current_index()].get());  // {"fast", "slow"}
    // [/doc]
    CHECK(order == std::vector<std::string>{"fast", "slow"});
}

TEST_CASE("add_done_callback is link") {
    // [doc: callback]
    auto t = green::spawn(fetch, "page", 10ms);
    std::string seen;
    t.link([&](green::task<std::string> done) { seen = "callback got " + done.get(); });  // t.add_done_callback(cb)
    green::wait();  // runs the loop until it has nothing left: t, then its callback
    // [/doc]
    CHECK(seen == "callback got page");
}

TEST_CASE("a Future is an async_result") {
    // [doc: future]
    green::async_result<int> future;  // loop.create_future()
    green::spawn([future] {
        green::sleep(10ms);
        future.set(42);  // future.set_result(42)
    });
    int answer = future.get();  // await future
    // [/doc]
    CHECK(answer == 42);
}

TEST_CASE("wait_for is with_timeout") {
    // [doc: wait-for]
    std::string page;
    try {
        page = green::with_timeout(20ms, fetch, "slow", 1s);  // await asyncio.wait_for(fetch(...), 0.02)
    } catch (const green::timeout_error&) {                   // asyncio.TimeoutError
        page = "gave up";
    }
    std::string cached = green::with_timeout(20ms, green::timeout_value(std::string("cached")), fetch, "slow", 1s);
    // [/doc]
    CHECK(page == "gave up");
    CHECK(cached == "cached");
}

TEST_CASE("cancel is kill") {
    // [doc: cancel]
    std::vector<std::string> log;
    auto t = green::spawn([&] {
        try {
            green::sleep(10s);
        } catch (const green::greenlet_exit&) {  // except asyncio.CancelledError:
            log.push_back("cleaning up");
            throw;  // raise
        }
    });
    green::sleep(10ms);
    t.kill();  // t.cancel(), then waits until t is dead
    try {
        t.get();
    } catch (const green::greenlet_exit&) {  // await t raises CancelledError
        log.push_back("cancelled");
    }
    // [/doc]
    CHECK(log == std::vector<std::string>{"cleaning up", "cancelled"});
    CHECK(t.dead());
}

// [doc: semaphore-download]
// At most 5 downloads at a time, however many tasks are spawned.
std::string download(green::semaphore& limit, std::string name) {
    std::lock_guard hold(limit);  // async with limit:
    return fetch(name, 10ms);
}
// [/doc]

TEST_CASE("Semaphore is semaphore") {
    const auto start = std::chrono::steady_clock::now();
    // [doc: semaphore]
    green::semaphore limit(5);  // asyncio.Semaphore(5)
    std::vector<green::any_task> tasks;
    for (int i = 0; i < 20; ++i)
        tasks.push_back(green::spawn([&limit, i] { return download(limit, "flag" + std::to_string(i)); }));
    green::joinall(tasks);  // about 40 ms: four rounds of five
    // [/doc]
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed >= 35ms);  // five at a time: four rounds, not one
    CHECK(limit.counter() == 5);
    for (const auto& t : tasks) CHECK(t.successful());
}

// [doc: slow-square]
// Blocks the whole thread: green's hub cannot switch away from it.
int slow_square(int x) {
    std::this_thread::sleep_for(50ms);
    return x * x;
}
// [/doc]

TEST_CASE("run_in_executor is run_in_thread") {
    // [doc: run-in-thread]
    int ticks = 0;
    auto ticker = green::spawn([&] {
        for (int i = 0; i < 4; ++i, ++ticks) green::sleep(10ms);
    });
    int squared = green::run_in_thread([] { return slow_square(7); });  // 49
    int ticked_meanwhile = ticks;                                         // 4: the hub kept running
    ticker.join();
    // [/doc]
    CHECK(squared == 49);
    CHECK(ticked_meanwhile >= 3);  // 40 ms of ticks fit in the worker's 50 ms
}

// docs/asyncio.md's code blocks must be these examples, line for line.
TEST_CASE("docs/asyncio.md shows the code above") {
    auto read = [](const std::string& path) {
        std::ifstream in(path);
        REQUIRE_MESSAGE(in, "cannot open " << path);
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) lines.push_back(line);
        return lines;
    };
    auto trim_left = [](const std::string& s) { return s.substr(std::min(s.find_first_not_of(' '), s.size())); };
    auto dedent = [](std::vector<std::string> block) {
        std::size_t indent = std::string::npos;
        for (const auto& l : block)
            if (!l.empty()) indent = std::min(indent, l.find_first_not_of(' '));
        for (auto& l : block) l = l.size() > indent ? l.substr(indent) : std::string();
        return block;
    };

    std::map<std::string, std::vector<std::string>> in_test;
    auto test = read(GREEN_DOCS_TEST_SOURCE);
    for (std::size_t i = 0; i < test.size(); ++i) {
        std::string l = trim_left(test[i]);
        if (l.rfind("// [doc: ", 0) != 0) continue;
        std::string name = l.substr(9, l.size() - 10);
        std::vector<std::string> block;
        while (++i < test.size() && trim_left(test[i]) != "// [/doc]") block.push_back(test[i]);
        in_test[name] = dedent(block);
    }

    std::map<std::string, std::vector<std::string>> in_doc;
    auto doc = read(GREEN_DOCS_DIR "/asyncio.md");
    for (std::size_t i = 0; i < doc.size(); ++i) {
        if (doc[i].rfind("<!-- doc: ", 0) != 0) continue;
        std::string name = doc[i].substr(10, doc[i].size() - 14);
        REQUIRE_MESSAGE((i + 1 < doc.size() && doc[i + 1] == "```cpp"), "no ```cpp block after " << doc[i]);
        std::vector<std::string> block;
        for (i += 2; i < doc.size() && doc[i] != "```"; ++i) block.push_back(doc[i]);
        in_doc[name] = block;
    }

    CHECK(in_test.size() >= 12);
    for (const auto& [name, block] : in_test) {
        INFO("example ", name);
        REQUIRE_MESSAGE(in_doc.count(name), "docs/asyncio.md does not show it");
        const auto& shown = in_doc[name];
        for (std::size_t i = 0; i < std::max(block.size(), shown.size()); ++i) {
            INFO("line ", i + 1);
            CHECK((i < shown.size() ? shown[i] : "<missing>") == (i < block.size() ? block[i] : "<missing>"));
        }
    }
    for (const auto& [name, block] : in_doc) {
        INFO("example ", name);
        CHECK_MESSAGE(in_test.count(name), "docs/asyncio.md shows it, but no test runs it");
    }
}
