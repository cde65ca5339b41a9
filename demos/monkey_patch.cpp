// The hub's eat/play again, but the tasks call plain libc ::sleep — code that knows nothing
// about green, like a C library you link. patch_all() makes such calls cooperative: in a task,
// ::sleep now parks the task on a hub timer and lets the others run, instead of stopping the
// thread.
//
// Prints egon eat 1, egon play 1, egon play 2, egon eat 2, main — in about 2 s, not 3. Without
// the patch_all() line the order is the same but it takes 3 s: each ::sleep would block the
// whole thread, so play's second could not pass while eat sleeps.
#include <green/hub.hpp>
#include <green/monkey.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <unistd.h>

void eat(std::string name) {
    std::cout << name << " eat 1\n";
    ::sleep(2);  // libc's sleep, patched: waits in the hub
    std::cout << name << " eat 2\n";
}

void play(std::string name) {
    std::cout << name << " play 1\n";
    ::sleep(1);
    std::cout << name << " play 2\n";
}

int main() {
    green::monkey::patch_all();  // first thing, as with gevent
    auto start = std::chrono::steady_clock::now();
    auto g1 = green::spawn(eat, "egon");
    auto g2 = green::spawn(play, "egon");
    green::joinall({g1, g2});
    std::cout << "main\n";
    // On stderr, so stdout stays exactly the five lines above (flushed first, to keep the order).
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::cout << std::flush;
    std::fprintf(stderr, "(took %.2f s: the two ::sleep calls overlapped)\n", took.count());
}
