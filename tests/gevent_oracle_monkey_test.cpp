// The gevent oracle case about monkey patching (tests/oracle/gevent/case02_monkey_time_sleep.py),
// ported like the others in gevent_oracle_test.cpp: same printed lines, compared with the
// recorded .expected output.
//
// How the Python maps to C++:
//   * monkey.patch_all()               -> green::monkey::patch_all(), first thing.
//   * time.sleep(0.2)                  -> ::nanosleep with 0.2 s: the libc call a C/C++
//                                         program makes, which libgreen defines.
//   * is_object_patched('time','sleep') -> green::monkey::is_patched(patch::time).
//   * time.sleep is gevent.sleep       -> the nanosleep the dynamic linker gives the program
//                                         (dlsym(RTLD_DEFAULT)) is the one in the object that
//                                         also holds green::monkey::patch_all, i.e. green's.
//   * get_original('time','sleep')     -> libc's own nanosleep, looked up in libc.so.6 itself.
//                                         dlsym(RTLD_NEXT, "nanosleep") from here would not
//                                         do: the next definition after the test program is
//                                         libgreen's, the hooked one. Calling libc's directly
//                                         is what an unpatched program does: it blocks the
//                                         thread, hub included, so the greenlets run one after
//                                         the other.
#include "oracle.hpp"

#include <green/hub.hpp>
#include <green/monkey.hpp>

#include <chrono>
#include <dlfcn.h>
#include <string>
#include <time.h>

namespace {

using sleep_function = int (*)(const timespec*, timespec*);

void sleep_seconds(sleep_function sleep, double seconds) {
    const auto ns = static_cast<long>(seconds * 1e9);
    const timespec length{ns / 1'000'000'000, ns % 1'000'000'000};
    sleep(&length, nullptr);
}

sleep_function original_sleep() {
    void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    REQUIRE(libc != nullptr);
    void* f = dlsym(libc, "nanosleep");
    REQUIRE(f != nullptr);
    return reinterpret_cast<sleep_function>(f);
}

bool sleep_is_greens() {
    Dl_info sleep_info{}, green_info{};
    void* bound = dlsym(RTLD_DEFAULT, "nanosleep");
    return bound && dladdr(bound, &sleep_info) &&
           dladdr(reinterpret_cast<void*>(&green::monkey::patch_all), &green_info) &&
           sleep_info.dli_fbase == green_info.dli_fbase;
}

double elapsed_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("case02_monkey_time_sleep") {
    green::monkey::patch_all();
    oracle::trace say;
    say("time.sleep patched:", green::monkey::is_patched(green::monkey::patch::time));
    say("time.sleep is gevent.sleep:", sleep_is_greens());

    auto eat = [&](std::string name, sleep_function sleep) {
        say(name + " eat 1");
        sleep_seconds(sleep, 0.2);
        say(name + " eat 2");
    };
    auto play = [&](std::string name, sleep_function sleep) {
        say(name + " play 1");
        sleep_seconds(sleep, 0.1);
        say(name + " play 2");
    };
    sleep_function patched = [](const timespec* length, timespec* left) { return ::nanosleep(length, left); };

    say("-- patched time.sleep (cooperative)");
    auto start = std::chrono::steady_clock::now();
    green::joinall({green::spawn(eat, "egon", patched), green::spawn(play, "egon", patched)});
    say("concurrent (elapsed < 0.28):", elapsed_since(start) < 0.28);

    say("-- original time.sleep (blocks the hub)");
    const sleep_function real_sleep = original_sleep();
    start = std::chrono::steady_clock::now();
    green::joinall({green::spawn(eat, "egon", real_sleep), green::spawn(play, "egon", real_sleep)});
    say("serialized (elapsed >= 0.3):", elapsed_since(start) >= 0.3);

    oracle::compare(say, "gevent", "case02_monkey_time_sleep");
}
