// One workload, three ways: greenlet's model next to gevent's, with the switches that each makes.
//
// Three workers (w1, w2, w3) each do three steps, and every step waits 0.2 s for "I/O".
//   1. greenlet: raw greenlets. main is the scheduler, written by hand: it switches to each
//      worker in turn, and a worker switches back after its step. The wait is a plain ::usleep,
//      which blocks the thread, so nobody runs while anyone waits: 9 x 0.2 s = 1.8 s.
//   2. gevent: spawned tasks waiting with green::sleep. The hub is the scheduler: a sleeping
//      worker switches to it, it runs whoever is ready, and it waits for all the timers at once:
//      3 x 0.2 s = 0.6 s.
//   3. gevent + patch_all: model 2's tasks with model 1's ::usleep. After patch_all() the libc
//      call waits in the hub like green::sleep: 0.6 s again, with the same switches as model 2.
//
// A tracer (green::settrace) records every switch. Each model prints its trace grouped by the
// time it happened, next to the steps run at that time, then a table compares the three. Only
// the times are measured; the rest is the same on every run.
#include <green/greenlet.hpp>
#include <green/hub.hpp>
#include <green/monkey.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

constexpr int workers = 3;
constexpr int steps = 3;
constexpr useconds_t io_wait_us = 200'000;  // one step's I/O wait: 0.2 s

// What a model did: steps and switches, each with the time it happened.
struct trace {
    struct entry {
        double at;          // seconds since the model started
        bool is_step;       // a step, or a switch
        std::string what;   // "w1 step 1", or the switch's target
        std::string from;   // the switch's origin
    };
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::vector<entry> entries;
    double took = 0;

    double now() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

trace* recording = nullptr;
green::greenlet main_greenlet;

std::string name_of(const green::greenlet& g) { return g == main_greenlet ? "main" : g.name(); }

void log_step(int worker, int n) {
    recording->entries.push_back({recording->now(), true, "w" + std::to_string(worker) + " step " + std::to_string(n), {}});
}

// Runs a model with the tracer on and returns what it recorded.
template <class F>
trace record(F model) {
    trace t;
    recording = &t;
    green::settrace([](std::string_view, const green::greenlet& from, const green::greenlet& to) {
        recording->entries.push_back({recording->now(), false, name_of(to), name_of(from)});
    });
    model();
    green::settrace({});
    t.took = t.now();
    recording = nullptr;
    return t;
}

// 1. greenlet: every switch is written out, and the wait blocks the thread.
void greenlet_worker(int id) {
    for (int n = 1; n <= steps; ++n) {
        log_step(id, n);
        ::usleep(io_wait_us);  // no hub, no patch: the thread just sleeps
        // Back to main, the scheduler. After the last step, returning does it: main is the parent.
        if (n < steps) main_greenlet.switch_to();
    }
}

// main is the scheduler: it switches to each worker in turn, round after round.
void greenlet_model() {
    std::vector<green::greenlet> ws;
    for (int id = 1; id <= workers; ++id)
        ws.emplace_back([id] { greenlet_worker(id); }, green::greenlet_options{.name = "w" + std::to_string(id)});
    for (int n = 1; n <= steps; ++n)
        for (auto& w : ws) w.switch_to();
}

// 2. gevent: the worker only says what it waits for; the hub decides who runs next.
void gevent_worker(int id) {
    for (int n = 1; n <= steps; ++n) {
        log_step(id, n);
        green::sleep(std::chrono::microseconds(io_wait_us));  // switches to the hub
    }
}

// 3. gevent + patch_all: the same worker, written as if for model 1.
void patched_worker(int id) {
    for (int n = 1; n <= steps; ++n) {
        log_step(id, n);
        ::usleep(io_wait_us);  // patched: waits in the hub like green::sleep
    }
}

void spawn_and_join(void (*worker)(int)) {
    std::vector<green::task<void>> ts;
    for (int id = 1; id <= workers; ++id) {
        ts.push_back(green::spawn(worker, id));
        ts.back().set_name("w" + std::to_string(id));  // names the task's greenlet too
    }
    for (auto& t : ts) t.join();  // main waits: the hub runs the workers
}

// Prints the trace one line per tenth of a second: the steps run then, and the switches made
// then, as a chain (each switch starts where the previous one went).
void print(const trace& t) {
    std::map<long, std::pair<std::string, std::string>> rows;  // tenth of a second -> steps, chain
    std::string at;                                             // where the chain has got to
    for (const auto& e : t.entries) {
        auto& [row_steps, row_chain] = rows[std::lround(e.at * 10)];
        if (e.is_step) {
            row_steps += (row_steps.empty() ? "" : ", ") + e.what;
        } else {
            if (e.from != at) row_chain += (row_chain.empty() ? "" : " ") + e.from;
            row_chain += "->" + e.what;
            at = e.what;
        }
    }
    std::printf("   %-6s %-33s %s\n", "time", "steps", "switches");
    for (const auto& [tenth, row] : rows)
        std::printf("   %.1f s  %-33s %s\n", tenth / 10.0, row.first.c_str(), row.second.c_str());
}

std::size_t switches(const trace& t) {
    std::size_t n = 0;
    for (const auto& e : t.entries) n += !e.is_step;
    return n;
}

bool same_switches(const trace& a, const trace& b) {
    auto switch_list = [](const trace& t) {
        std::vector<std::string> list;
        for (const auto& e : t.entries)
            if (!e.is_step) list.push_back(e.from + "->" + e.what);
        return list;
    };
    return switch_list(a) == switch_list(b);
}

std::string step_order(const trace& t) {
    std::string order;
    for (const auto& e : t.entries)
        if (e.is_step) order += (order.empty() ? "" : " ") + e.what.substr(0, e.what.find(' '));
    return order;
}

}  // namespace

int main() {
    main_greenlet = green::getcurrent();
    std::printf("Three workers, w1 w2 w3, do three steps each; every step waits 0.2 s for I/O.\n"
                "Each trace line shows a moment: the steps run then, and the switches made then\n"
                "as a chain (main->w1->main: main switched to w1, which switched back).\n");

    std::printf("\n1. greenlet: main switches to each worker by hand; ::usleep blocks the thread\n");
    trace raw = record(greenlet_model);
    print(raw);
    std::printf("   # one step per 0.2 s: while a worker waits, the thread sleeps and nobody else runs\n");

    std::printf("\n2. gevent: spawned tasks wait with green::sleep; the hub switches\n");
    trace hub = record([] { spawn_and_join(gevent_worker); });
    print(hub);
    std::printf("   # the hub takes main's place from model 1, but while a worker waits it runs the next\n"
                "   # one, then waits for all three timers at once: three steps per 0.2 s\n");

    green::monkey::patch_all();  // from here on, ::usleep in a task waits in the hub
    std::printf("\n3. gevent + patch_all(): model 2's tasks with model 1's plain ::usleep\n");
    trace patched = record([] { spawn_and_join(patched_worker); });
    print(patched);
    std::printf("   # %s: the patched libc call waits in the hub\n",
                same_switches(patched, hub) ? "the same switches as model 2" : "unlike model 2's switches (unexpected)");

    std::printf("\n%-33s %8s   %-28s %s\n", "model", "switches", "step order", "time");
    const std::pair<const char*, const trace*> models[] = {{"1 greenlet, blocking ::usleep", &raw},
                                                           {"2 gevent, green::sleep", &hub},
                                                           {"3 gevent + patch_all(), ::usleep", &patched}};
    for (const auto& [title, t] : models)
        std::printf("%-33s %8zu   %-28s %.2f s\n", title, switches(*t), step_order(*t).c_str(), t->took);
    std::printf("# The same steps in the same order. The hub costs switches (every hand-off goes through it)\n"
                "# and saves time (the waits overlap); patch_all() gives plain libc calls the same deal.\n");
}
