// poll, select, ppoll, pselect and epoll_wait after patch_all(): they wait in the hub on the
// fds given, for the timeout given, and report exactly what libc's would. A zero timeout never
// yields; with a signal mask, ppoll, pselect and epoll_pwait are libc's.
#include "monkey_support.hpp"

#include <algorithm>
#include <poll.h>
#include <csignal>
#include <sys/epoll.h>
#include <sys/select.h>
#include <vector>

using namespace monkey_test;

extern "C" int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen);

TEST_CASE("poll waits in the hub until one of several fds is ready, and says which") {
    green::monkey::patch_all();
    fd_pair p1 = make_pipe(), p2 = make_pipe(), s = make_socketpair();
    ticker tick(1ms);
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        ::write(p2.b, "x", 1);
    });
    pollfd fds[3] = {{p1.a, POLLIN, 0}, {p2.a, POLLIN, 0}, {s.a, POLLIN, 0}};
    const int before = tick.ticks;
    CHECK(::poll(fds, 3, 5000) == 1);
    CHECK(fds[0].revents == 0);
    CHECK(fds[1].revents == POLLIN);
    CHECK(fds[2].revents == 0);
    CHECK(tick.ticks - before >= 10);
    writer.join();
}

TEST_CASE("poll for writing waits until a full pipe has room, along with a read direction") {
    green::monkey::patch_all();
    fd_pair full = make_pipe(), idle = make_socketpair();
    const std::size_t filled = fill(full.b);
    auto drainer = green::spawn([&] {
        green::sleep(20ms);
        std::vector<char> buf(filled);
        std::size_t got = 0;
        while (got < filled) got += static_cast<std::size_t>(::read(full.a, buf.data(), buf.size() - got));
    });
    pollfd fds[2] = {{idle.a, POLLIN, 0}, {full.b, POLLOUT, 0}};
    CHECK(::poll(fds, 2, 5000) == 1);
    CHECK(fds[0].revents == 0);
    CHECK(fds[1].revents == POLLOUT);
    drainer.join();
}

TEST_CASE("poll reports POLLHUP when the other end goes away") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto closer = green::spawn([&] {
        green::sleep(10ms);
        ::close(std::exchange(p.b, -1));
    });
    pollfd fd{p.a, POLLIN, 0};
    CHECK(::poll(&fd, 1, 5000) == 1);
    CHECK(fd.revents == POLLHUP);
    closer.join();
}

TEST_CASE("poll's timeout: 0 after about that long, waiting in the hub; a zero timeout never yields") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    ticker tick(1ms);
    pollfd fd{p.a, POLLIN, 0};
    int before = tick.ticks;
    const auto start = clock_type::now();
    CHECK(::poll(&fd, 1, 100) == 0);
    const double elapsed = seconds_since(start);
    CHECK(elapsed >= 0.095);
    CHECK(elapsed < 0.4);
    CHECK(fd.revents == 0);
    CHECK(tick.ticks - before >= 20);

    before = tick.ticks;
    for (int i = 0; i < 100; ++i) CHECK(::poll(&fd, 1, 0) == 0);
    ::write(p.b, "y", 1);
    CHECK(::poll(&fd, 1, 0) == 1);
    CHECK(tick.ticks == before);
}

TEST_CASE("poll ignores negative fds; with no fds at all it is a sleep") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(p.b, "z", 1);
    });
    pollfd fds[3] = {{-1, POLLIN, 0}, {p.a, POLLIN, 0}, {-5, POLLOUT, 0}};
    fds[0].revents = 77;
    CHECK(::poll(fds, 3, 5000) == 1);
    CHECK(fds[0].revents == 0);
    CHECK(fds[1].revents == POLLIN);
    CHECK(fds[2].revents == 0);
    writer.join();

    ticker tick(1ms);
    for (bool none : {true, false}) {
        CAPTURE(none);
        pollfd negative{-1, POLLIN, 0};
        const int before = tick.ticks;
        const auto start = clock_type::now();
        CHECK(::poll(none ? nullptr : &negative, none ? 0 : 1, 60) == 0);
        CHECK(seconds_since(start) >= 0.055);
        CHECK(tick.ticks - before >= 10);
    }
    // ... for ever, with a negative timeout (as libc: only a signal would end it).
    auto forever = green::spawn([] { return ::poll(nullptr, 0, -1); });
    green::sleep(30ms);
    CHECK_FALSE(forever.dead());
    forever.kill();
}

TEST_CASE("poll on a closed fd says POLLNVAL at once, as libc's does") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    const int closed = p.a;
    ::close(std::exchange(p.a, -1));
    pollfd hooked{closed, POLLIN, 0}, real{closed, POLLIN, 0};
    CHECK(in_greenlet([&] { return ::poll(&hooked, 1, 5000); }) == 1);
    CHECK(LIBC(poll)(&real, 1, 5000) == 1);
    CHECK(hooked.revents == POLLNVAL);
    CHECK(real.revents == POLLNVAL);
}

TEST_CASE("a readiness gone by the time poll looks again does not end its wait early") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    // A poller and a reader wait on one pipe; the reader is woken first and takes the byte.
    // libc's poll would sleep on until the next byte; so must the hooked one.
    auto poller = green::spawn([&] {
        pollfd fd{p.a, POLLIN, 0};
        const auto start = clock_type::now();
        const int r = ::poll(&fd, 1, 5000);
        return std::pair<int, double>(r, seconds_since(start));
    });
    auto reader = green::spawn([&] {
        char c;
        return ::read(p.a, &c, 1);
    });
    green::sleep(10ms);
    ::write(p.b, "t", 1);
    CHECK(reader.get() == 1);
    green::sleep(40ms);
    ::write(p.b, "u", 1);
    const auto [ready, waited] = poller.get();
    CHECK(ready == 1);
    CHECK(waited >= 0.045);
}

TEST_CASE("poll on the same fd twice reports each entry") {
    green::monkey::patch_all();
    fd_pair s = make_socketpair();
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(s.b, "d", 1);
    });
    fill(s.a);
    pollfd fds[2] = {{s.a, POLLOUT, 0}, {s.a, POLLIN, 0}};
    CHECK(::poll(fds, 2, 5000) == 1);
    CHECK(fds[0].revents == 0);
    CHECK(fds[1].revents == POLLIN);
    writer.join();
}

TEST_CASE("the fortified __poll_chk waits like poll") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(p.b, "c", 1);
    });
    ticker tick(1ms);
    pollfd fd{p.a, POLLIN, 0};
    const int before = tick.ticks;
    CHECK(__poll_chk(&fd, 1, 5000, sizeof fd) == 1);
    CHECK(tick.ticks > before);
    writer.join();
}

TEST_CASE("select waits in the hub for reading and writing sets, and clears what is not ready") {
    green::monkey::patch_all();
    fd_pair p1 = make_pipe(), p2 = make_pipe(), full = make_pipe();
    fill(full.b);
    ticker tick(1ms);
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        ::write(p2.b, "s", 1);
    });
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(p1.a, &rd);
    FD_SET(p2.a, &rd);
    FD_SET(full.b, &wr);
    const int nfds = std::max({p1.a, p2.a, full.b}) + 1;
    const int before = tick.ticks;
    CHECK(::select(nfds, &rd, &wr, nullptr, nullptr) == 1);
    CHECK_FALSE(FD_ISSET(p1.a, &rd));
    CHECK(FD_ISSET(p2.a, &rd));
    CHECK_FALSE(FD_ISSET(full.b, &wr));
    CHECK(tick.ticks - before >= 10);
    writer.join();
}

TEST_CASE("select's timeout: 0 and empty sets after about that long; the time left is written back") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    ticker tick(1ms);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p.a, &rd);
    timeval tv = ms_timeval(80);
    const int before = tick.ticks;
    const auto start = clock_type::now();
    CHECK(::select(p.a + 1, &rd, nullptr, nullptr, &tv) == 0);
    CHECK(seconds_since(start) >= 0.075);
    CHECK_FALSE(FD_ISSET(p.a, &rd));
    CHECK(tv.tv_sec == 0);
    CHECK(tv.tv_usec == 0);
    CHECK(tick.ticks - before >= 15);

    // Woken after ~30 ms of a 1 s timeout: about 0.97 s left.
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        ::write(p.b, "r", 1);
    });
    FD_SET(p.a, &rd);
    tv = ms_timeval(1000);
    CHECK(::select(p.a + 1, &rd, nullptr, nullptr, &tv) == 1);
    const double left = static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    CHECK(left > 0.8);
    CHECK(left < 0.975);
    writer.join();

    // Ready at once: the time left is still written back, as Linux does (a little under 1 s).
    tv = ms_timeval(1000);
    CHECK(::select(p.a + 1, &rd, nullptr, nullptr, &tv) == 1);
    CHECK(tv.tv_sec == 0);
    CHECK(tv.tv_usec > 900'000);
}

TEST_CASE("select with a zero timeout never yields; with no fds it is a sleep") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    ticker tick(1ms);
    int before = tick.ticks;
    for (int i = 0; i < 100; ++i) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p.a, &rd);
        timeval zero{0, 0};
        CHECK(::select(p.a + 1, &rd, nullptr, nullptr, &zero) == 0);
    }
    CHECK(tick.ticks == before);

    before = tick.ticks;
    timeval tv = ms_timeval(60);
    const auto start = clock_type::now();
    CHECK(::select(0, nullptr, nullptr, nullptr, &tv) == 0);
    CHECK(seconds_since(start) >= 0.055);
    CHECK(tick.ticks - before >= 10);
}

TEST_CASE("select's errors are libc's: a closed fd in a set, a negative timeout") {
    green::monkey::patch_all();
    auto select_libc = LIBC(select);
    fd_pair p = make_pipe(), closed = make_pipe();
    const int gone = closed.a;
    ::close(std::exchange(closed.a, -1));
    ::write(p.b, "!", 1);  // p.a is ready: a negative timeout must still be refused
    for (int which : {0, 1}) {
        CAPTURE(which);
        auto call = [&](bool hooked) {
            fd_set rd;
            FD_ZERO(&rd);
            FD_SET(which == 0 ? gone : p.a, &rd);
            timeval tv = which == 0 ? ms_timeval(1000) : timeval{-1, 0};
            const int nfds = std::max(gone, p.a) + 1;
            return attempt([&] {
                return hooked ? ::select(nfds, &rd, nullptr, nullptr, &tv) : select_libc(nfds, &rd, nullptr, nullptr, &tv);
            });
        };
        const outcome hooked = in_greenlet([&] { return call(true); });
        CHECK(hooked == call(false));
        CHECK(hooked == outcome{-1, which == 0 ? EBADF : EINVAL});
    }
}

TEST_CASE("errno is left alone by a poll or select that waited and succeeded") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto clobber = green::spawn([&] {
        for (int i = 0; i < 2; ++i) {
            errno = EIO;
            green::sleep(10ms);
            errno = EIO;
            ::write(p.b, "e", 1);
            errno = EIO;
        }
    });
    pollfd fd{p.a, POLLIN, 0};
    errno = 0;
    CHECK(::poll(&fd, 1, 5000) == 1);
    CHECK(errno == 0);
    char c;
    ::read(p.a, &c, 1);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p.a, &rd);
    errno = 0;
    CHECK(::select(p.a + 1, &rd, nullptr, nullptr, nullptr) == 1);
    CHECK(errno == 0);
    clobber.join();
}

TEST_CASE("poll for POLLRDNORM, POLLWRNORM and POLLRDHUP wakes when libc's would") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    auto writer = green::spawn([&] {
        green::sleep(10ms);
        ::write(p.b, "n", 1);
    });
    pollfd rd{p.a, POLLRDNORM, 0};
    CHECK(within_2s([&] { return ::poll(&rd, 1, 5000); }) == outcome{1, 0});
    CHECK(rd.revents == POLLRDNORM);
    writer.join();

    fd_pair full = make_pipe();
    const std::size_t filled = fill(full.b);
    auto drainer = green::spawn([&] {
        green::sleep(10ms);
        std::vector<char> buf(filled);
        std::size_t got = 0;
        while (got < filled) got += static_cast<std::size_t>(::read(full.a, buf.data(), buf.size() - got));
    });
    pollfd wr{full.b, POLLWRNORM, 0};
    CHECK(within_2s([&] { return ::poll(&wr, 1, 5000); }) == outcome{1, 0});
    CHECK(wr.revents == POLLWRNORM);
    drainer.join();

    fd_pair s = make_socketpair();
    auto closer = green::spawn([&] {
        green::sleep(10ms);
        ::shutdown(s.b, SHUT_WR);
    });
    pollfd hup{s.a, POLLRDHUP, 0};
    CHECK(within_2s([&] { return ::poll(&hup, 1, 5000); }) == outcome{1, 0});
    CHECK((hup.revents & POLLRDHUP) != 0);
    closer.join();
}

TEST_CASE("ppoll waits in the hub like poll and leaves its timeout alone; with a signal mask it is libc's") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    ticker tick(1ms);
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        ::write(p.b, "x", 1);
    });
    pollfd fd{p.a, POLLIN, 0};
    const timespec five_s{5, 0};
    int before = tick.ticks;
    CHECK(::ppoll(&fd, 1, &five_s, nullptr) == 1);
    CHECK(fd.revents == POLLIN);
    CHECK(tick.ticks - before >= 10);
    writer.join();
    char c;
    ::read(p.a, &c, 1);

    const timespec fifty_ms{0, 50'000'000};
    before = tick.ticks;
    auto start = clock_type::now();
    CHECK(::ppoll(&fd, 1, &fifty_ms, nullptr) == 0);
    CHECK(seconds_since(start) >= 0.045);
    CHECK(tick.ticks - before >= 10);
    CHECK(fifty_ms.tv_nsec == 50'000'000);

    const timespec zero{0, 0};
    before = tick.ticks;
    for (int i = 0; i < 100; ++i) CHECK(::ppoll(&fd, 1, &zero, nullptr) == 0);
    CHECK(tick.ticks == before);

    // A signal mask: the thread blocks in libc's ppoll, and nothing else runs meanwhile.
    sigset_t none;
    sigemptyset(&none);
    before = tick.ticks;
    start = clock_type::now();
    CHECK(::ppoll(&fd, 1, &fifty_ms, &none) == 0);
    CHECK(seconds_since(start) >= 0.045);
    CHECK(tick.ticks == before);
}

TEST_CASE("pselect waits in the hub like select and leaves its timeout alone") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    ticker tick(1ms);
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        ::write(p.b, "x", 1);
    });
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p.a, &rd);
    const timespec five_s{5, 0};
    int before = tick.ticks;
    CHECK(::pselect(p.a + 1, &rd, nullptr, nullptr, &five_s, nullptr) == 1);
    CHECK(FD_ISSET(p.a, &rd));
    CHECK(tick.ticks - before >= 10);
    CHECK(five_s.tv_sec == 5);
    writer.join();
    char c;
    ::read(p.a, &c, 1);

    FD_ZERO(&rd);
    FD_SET(p.a, &rd);
    const timespec fifty_ms{0, 50'000'000};
    before = tick.ticks;
    const auto start = clock_type::now();
    CHECK(::pselect(p.a + 1, &rd, nullptr, nullptr, &fifty_ms, nullptr) == 0);
    CHECK(seconds_since(start) >= 0.045);
    CHECK(tick.ticks - before >= 10);
    CHECK_FALSE(FD_ISSET(p.a, &rd));

    const timespec bad{0, 1'000'000'000};
    FD_SET(p.a, &rd);
    CHECK(in_greenlet([&] { return attempt([&] { return ::pselect(p.a + 1, &rd, nullptr, nullptr, &bad, nullptr); }); }) ==
          outcome{-1, EINVAL});
}

TEST_CASE("epoll_wait on the program's own epoll set waits in the hub") {
    green::monkey::patch_all();
    fd_pair p = make_pipe();
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = p.a;
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, p.a, &ev) == 0);
    ticker tick(1ms);
    auto writer = green::spawn([&] {
        green::sleep(30ms);
        ::write(p.b, "x", 1);
    });
    epoll_event got[4];
    int before = tick.ticks;
    CHECK(::epoll_wait(ep, got, 4, 5000) == 1);
    const int which = got[0].data.fd;  // copies: epoll_event is packed
    const unsigned what = got[0].events;
    CHECK(which == p.a);
    CHECK(what == EPOLLIN);
    CHECK(tick.ticks - before >= 10);
    writer.join();
    char c;
    ::read(p.a, &c, 1);

    before = tick.ticks;
    const auto start = clock_type::now();
    CHECK(::epoll_pwait(ep, got, 4, 50, nullptr) == 0);
    CHECK(seconds_since(start) >= 0.045);
    CHECK(tick.ticks - before >= 10);

    before = tick.ticks;
    for (int i = 0; i < 100; ++i) CHECK(::epoll_wait(ep, got, 4, 0) == 0);
    CHECK(tick.ticks == before);
    ::close(ep);
}

TEST_CASE("epoll_wait's errors are libc's: a bad fd, a fd that is no epoll set, no room for events") {
    green::monkey::patch_all();
    auto epoll_wait_libc = LIBC(epoll_wait);
    const int ep = epoll_create1(EPOLL_CLOEXEC);  // before the close below, or it takes that number
    REQUIRE(ep >= 0);
    fd_pair p = make_pipe(), closed = make_pipe();
    const int gone = closed.a;
    ::close(std::exchange(closed.a, -1));
    epoll_event got[2];
    struct call {
        int fd, max;
        int error;
    };
    for (const call& c : {call{gone, 2, EBADF}, call{p.a, 2, EINVAL}, call{ep, 0, EINVAL}}) {
        CAPTURE(c.fd);
        CAPTURE(c.max);
        const outcome hooked = in_greenlet([&] { return attempt([&] { return ::epoll_wait(c.fd, got, c.max, 1000); }); });
        CHECK(hooked == attempt([&] { return epoll_wait_libc(c.fd, got, c.max, 1000); }));
        CHECK(hooked == outcome{-1, c.error});
    }
    ::close(ep);
}
