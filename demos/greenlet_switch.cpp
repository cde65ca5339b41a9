// Two greenlets handing control back and forth with explicit switches: prints 1 3 2 4.
//
// gr1 prints 1 and switches to gr2, which prints 3 and switches back; gr1 resumes where it
// left off, prints 2 and switches again; gr2 resumes, prints 4 and returns, which ends the
// program's switch into gr1 (gr2's parent is main). Nothing runs unless switched to.
#include <green/greenlet.hpp>

#include <iostream>

green::greenlet gr1, gr2;

void func1() {
    std::cout << 1 << '\n';
    gr2.switch_to();
    std::cout << 2 << '\n';
    gr2.switch_to();
}

void func2() {
    std::cout << 3 << '\n';
    gr1.switch_to();
    std::cout << 4 << '\n';
}

int main() {
    gr1.set_run(func1);
    gr2.set_run(func2);
    gr1.switch_to();
}
