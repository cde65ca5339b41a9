// The same ten tasks, each sleeping 0.5 s: called one after another they take 5 s; spawned,
// they all sleep at once and take 0.5 s. Nothing in task() changes — only how it is called.
//
// green::sleep waits in the hub. Called from main with nothing else to run, the hub simply
// waits out the timer, so the synchronous loop pays every sleep in full; spawned tasks park
// their timers side by side and the hub wakes them together, in the order they were spawned.
#include <green/hub.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace std::chrono_literals;

void task(int pid) {
    green::sleep(500ms);  // stands for I/O: a request, a query, a read
    std::printf("Task %d done\n", pid);
}

void synchronous() {
    for (int i = 0; i < 10; ++i) task(i);
}

void asynchronous() {
    std::vector<green::any_task> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(green::spawn(task, i));
    green::joinall(tasks);
}

// Runs fn and prints how long it took.
template <class F>
void timed(const char* title, F fn) {
    std::printf("%s\n", title);
    auto start = std::chrono::steady_clock::now();
    fn();
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("took %.2f s\n", took.count());
}

int main() {
    timed("Synchronous:", synchronous);
    timed("Asynchronous:", asynchronous);
}
