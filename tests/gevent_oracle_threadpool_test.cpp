// The gevent threadpool oracle case (tests/oracle/gevent/case18_threadpool.py), ported to C++:
// the test prints the same trace as the Python program and compares it with the recorded
// output. Every line matches; nothing is omitted or substituted.
//
// As in the Python program, time.sleep in blocking_work is the real, blocking sleep
// (std::this_thread::sleep_for); timings are printed as booleans with the same wide bounds.
#include "oracle.hpp"

#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/threadpool.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using green::repr;

namespace {

double elapsed_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

// Python's OSError, as the other oracle ports spell Python's exceptions.
struct OSError : std::runtime_error {
    explicit OSError(const std::string& m) : std::runtime_error(m) {}
};

// gevent.get_hub().exception_stream = io.StringIO(): keeps the hub's reports off stderr, and
// collects them.
struct hub_errors {
    std::string text;
    green::hub::error_handler previous;
    hub_errors() {
        previous = green::get_hub().set_error_handler([this](std::string_view context, std::exception_ptr e) {
            text += std::string(context) + " failed with " + green::detail::type_name_of(e) + "\n";
        });
    }
    ~hub_errors() { green::get_hub().set_error_handler(previous); }
};

}  // namespace

TEST_CASE("case18_threadpool") {
    oracle::trace say;
    std::vector<std::string> trace;
    const std::thread::id main_thread = std::this_thread::get_id();

    auto ticker = [&](int n, green::duration period) {
        for (int i = 1; i <= n; ++i) {
            green::sleep(period);
            trace.push_back("tick" + std::to_string(i));
        }
    };
    auto blocking_work = [main_thread](double seconds) {
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // real, blocking sleep
        return std::string("done in ") +
               (std::this_thread::get_id() != main_thread ? "worker thread" : "MAIN thread");
    };

    green::threadpool& pool = green::get_hub().threadpool();  // the hub's default pool (maxsize 10)

    say("-- blocking call in the threadpool; ticks every 0.1 s, work takes 0.25 s");
    auto t = green::spawn(ticker, 4, 100ms);
    auto res = pool.spawn(blocking_work, 0.25);  // returns an async_result immediately
    say("spawn returned", std::is_same_v<decltype(res), green::async_result<std::string>> ? "AsyncResult" : "?");
    trace.push_back("result: " + res.get());  // cooperative wait
    t.join();
    say(join_words(trace));

    say("-- same blocking call made directly in a greenlet freezes everyone");
    trace.clear();
    t = green::spawn(ticker, 2, 100ms);
    green::sleep();  // let the ticker arm its timer
    trace.push_back("result: " + blocking_work(0.25));
    t.join();
    say(join_words(trace));

    say("-- apply() blocks the greenlet until the thread finishes");
    say("apply ->", pool.apply(blocking_work, 0.05));

    say("-- exception in the worker thread re-raises in get()");
    {
        hub_errors reports;  // the hub also reports it
        auto broken = [] { throw OSError("disk on fire"); };
        try {
            pool.spawn(broken).get();
        } catch (const OSError&) {
            say("get() raised", repr(std::current_exception()));
        }
        CHECK(reports.text == "threadpool job failed with OSError\n");
    }

    say("-- ThreadPool(2): at most 2 concurrent threads; 4 x 0.1 s tasks take ~0.2 s");
    green::threadpool tp(2);
    auto start = std::chrono::steady_clock::now();
    std::vector<std::string> results;
    for (const std::string& r : tp.imap(blocking_work, std::vector<double>(4, 0.1))) results.push_back(r);
    const double elapsed = elapsed_since(start);
    say("imap results:", results.size(), "| 0.18 < elapsed < 0.35:", 0.18 < elapsed && elapsed < 0.35);
    tp.kill();

    oracle::compare(say, "gevent", "case18_threadpool");
}
