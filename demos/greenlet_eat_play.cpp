// Values passed on the first switch become the run function's arguments: eat("egon") starts
// play("egon"); after that, switches carry nothing and just hand over control.
//
// Prints egon eat 1, egon play 1, egon eat 2, egon play 2. A greenlet never gives up the CPU
// unless it switches: if eat() called a blocking sleep here, everyone would wait for it —
// which is what the hub (demos/gevent_eat_play) fixes.
#include <green/greenlet.hpp>

#include <iostream>
#include <string>

green::greenlet g1, g2;

void eat(std::string name) {
    std::cout << name << " eat 1\n";
    g2.switch_to(std::string("egon"));
    std::cout << name << " eat 2\n";
    g2.switch_to();
}

void play(std::string name) {
    std::cout << name << " play 1\n";
    g1.switch_to();
    std::cout << name << " play 2\n";
}

int main() {
    g1.set_run(eat);
    g2.set_run(play);
    g1.switch_to(std::string("egon"));  // arguments only on the first switch
}
