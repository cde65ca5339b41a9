// The hub switches for you: eat and play are spawned as tasks, and each green::sleep hands the
// thread to the hub, which runs whoever is ready and wakes sleepers when their timers fire.
//
// Prints egon eat 1, egon play 1, egon play 2, egon eat 2, main — and takes about 2 s, not 3:
// play's 1 s sleep passes while eat is sleeping its 2 s. Compare demos/greenlet_eat_play, where
// every switch is written by hand and a sleep would stall everyone.
#include <green/hub.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

void eat(std::string name) {
    std::cout << name << " eat 1\n";
    green::sleep(2s);  // switches to the hub; play runs meanwhile
    std::cout << name << " eat 2\n";
}

void play(std::string name) {
    std::cout << name << " play 1\n";
    green::sleep(1s);
    std::cout << name << " play 2\n";
}

int main() {
    auto start = std::chrono::steady_clock::now();
    auto g1 = green::spawn(eat, "egon");  // queued: nothing runs until main waits
    auto g2 = green::spawn(play, "egon");
    g1.join();  // main waits, so the hub runs both tasks
    g2.join();  // already done: play finished first
    std::cout << "main\n";
    // On stderr, so stdout stays exactly the five lines above (flushed first, to keep the order).
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::cout << std::flush;
    std::fprintf(stderr, "(took %.2f s: the two sleeps overlapped)\n", took.count());
}
