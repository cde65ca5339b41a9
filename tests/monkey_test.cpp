// Monkey patching: plain libc calls become cooperative after patch_all().
#include <green/hub.hpp>
#include <green/monkey.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("after patch_all, ::sleep and ::usleep in greenlets run concurrently") {
    green::monkey::patch_all();
    CHECK(green::monkey::is_patched());
    std::vector<std::string> trace;
    const auto start = clock_type::now();
    auto eat = green::spawn([&] {
        trace.push_back("eat 1");
        ::usleep(200'000);
        trace.push_back("eat 2");
    });
    auto play = green::spawn([&] {
        trace.push_back("play 1");
        ::usleep(100'000);
        trace.push_back("play 2");
    });
    green::joinall({eat, play});
    const auto elapsed = clock_type::now() - start;
    CHECK(trace == std::vector<std::string>{"eat 1", "play 1", "play 2", "eat 2"});
    CHECK(elapsed < 280ms);
}

TEST_CASE("a blocking pipe read waits in the hub; the fd's flags are left as they were") {
    green::monkey::patch_all();
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::vector<std::string> trace;
    auto reader = green::spawn([&] {
        char buf[16];
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        trace.push_back("read " + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
    });
    auto writer = green::spawn([&] {
        trace.push_back("writer runs while the reader waits");
        ::write(fds[1], "data", 4);
    });
    green::joinall({reader, writer});
    CHECK(trace == std::vector<std::string>{"writer runs while the reader waits", "read data"});
    CHECK((::fcntl(fds[0], F_GETFL) & O_NONBLOCK) == 0);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("poll waits cooperatively; a zero timeout never yields") {
    green::monkey::patch_all();
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    int ticks = 0;
    auto ticker = green::spawn([&] {
        for (int i = 0; i < 3; ++i) {
            ++ticks;
            green::sleep(5ms);
        }
        ::write(fds[1], "x", 1);
    });
    pollfd p{fds[0], POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);
    CHECK(ticks == 0);  // no yield happened
    CHECK(::poll(&p, 1, 5000) == 1);
    CHECK((p.revents & POLLIN) != 0);
    CHECK(ticks == 3);
    ticker.join();
    ::close(fds[0]);
    ::close(fds[1]);
}
