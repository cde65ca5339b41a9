// The echo benchmark's Boost.Fiber peer: one fiber per connection, each echoing with plain
// read/write on non-blocking sockets, single-threaded, like the other echo servers.
//
//     echo_fiber [port]        # port 0 (the default): any free port; prints "port N"
//
// Boost.Fiber has no I/O of its own; its docs leave that to the scheduling algorithm (a custom
// `algo::algorithm`: "suspend_until() allows a custom scheduler to yield control to the
// containing environment", as the asio example's round_robin does with an io_context) and give
// `context::suspend()` / `context::schedule()` as "a low-level API potentially useful for
// integration with other frameworks". So the epoll loop lives in the scheduler:
//
// - epoll_scheduler keeps a round-robin ready queue, like algo::round_robin.
// - The fiber manager calls suspend_until(t) when no fiber is ready; it blocks in epoll_wait
//   until t (the nearest sleep_for deadline, or for ever) and makes ready the fibers waiting on
//   the fds it reports. notify() (a fiber made ready from another thread) writes an eventfd
//   that is in the epoll set, so the wait ends. Idle, the process sleeps in epoll_wait(-1).
// - A fiber tries read/write first; on EAGAIN it puts itself in the fd's reader (writer) slot
//   and suspends. The next epoll_wait puts it back in the ready queue. Nothing runs between the
//   EAGAIN and the suspend (one thread, cooperative), and data that arrives after the EAGAIN is
//   a new edge that the next epoll_wait reports: no wake-up is lost.
// - Each fd is registered once, edge-triggered, for reading and writing: no epoll_ctl per wait,
//   and an fd nobody waits on is reported at most once per edge (level-triggered, a connection
//   blocked in a write would report "readable" at every poll).
// - The manager only calls suspend_until() when the ready queue is empty. So that fibers that
//   yield in a loop cannot starve I/O, the dispatcher's turn in the round also polls epoll
//   without blocking when other fibers are ready. The echo never takes that path.
//
// Boost.Fiber's defaults otherwise: fixedsize_stack (128 KiB from malloc), launch::post.
#include "net_common.h"

#include <boost/fiber/all.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace {

using boost::fibers::context;

class epoll_scheduler final : public boost::fibers::algo::algorithm {
public:
    epoll_scheduler() {
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (epfd_ < 0 || wakefd_ < 0) {
            perror("epoll_create1/eventfd");
            std::exit(1);
        }
        epoll_event ev{};
        ev.events = EPOLLIN;  // level-triggered: read() drains it
        ev.data.fd = wakefd_;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
        current_ = this;
    }
    ~epoll_scheduler() override {
        current_ = nullptr;
        close(wakefd_);
        close(epfd_);
    }
    epoll_scheduler(const epoll_scheduler&) = delete;
    epoll_scheduler& operator=(const epoll_scheduler&) = delete;

    // The thread's scheduler, once use_scheduling_algorithm<epoll_scheduler>() has run.
    static epoll_scheduler& get() { return *current_; }

    // Adds a non-blocking fd to the epoll set, once, for as long as it stays open.
    void add(int fd) {
        if (static_cast<std::size_t>(fd) >= waiting_.size()) waiting_.resize(static_cast<std::size_t>(fd) * 2 + 64);
        waiting_[static_cast<std::size_t>(fd)] = {};
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.fd = fd;
        if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) perror("epoll_ctl");
    }

    // Suspends the running fiber until fd is readable (writable), or has an error or hang-up.
    // One waiter per direction per fd, as in any one-fiber-per-connection server.
    void wait(int fd, bool for_writing) {
        fd_waiters& w = waiting_[static_cast<std::size_t>(fd)];
        context*& slot = for_writing ? w.writer : w.reader;
        slot = context::active();
        slot->suspend();  // poll() takes it out of the slot and schedules it
    }

    // algorithm: a round-robin ready queue, as algo::round_robin.
    void awakened(context* ctx) noexcept override {
        // The dispatcher is queued each time it hands the thread to a fiber: a new round begins.
        if (ctx->is_context(boost::fibers::type::dispatcher_context)) polled_this_round_ = false;
        ctx->ready_link(ready_);
    }

    context* pick_next() noexcept override {
        if (ready_.empty()) return nullptr;
        // The dispatcher runs once per round of the ready queue; if fibers are still ready then,
        // it will not reach suspend_until(), so it looks at epoll here without blocking (once:
        // not again right after suspend_until() polled).
        if (!polled_this_round_ && context::active()->is_context(boost::fibers::type::dispatcher_context)) poll(0);
        context* ctx = &ready_.front();
        ready_.pop_front();
        return ctx;
    }

    bool has_ready_fibers() const noexcept override { return !ready_.empty(); }

    void suspend_until(std::chrono::steady_clock::time_point const& until) noexcept override {
        int timeout = -1;
        if (until != std::chrono::steady_clock::time_point::max()) {
            // Rounded up: waking a little late is harmless, waking early would spin until then.
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
            timeout = ms < 0 ? 0 : ms > 1000000 ? 1000000 : static_cast<int>(ms);
        }
        poll(timeout);
    }

    // The one algorithm method that may be called from another thread: it only writes an eventfd.
    void notify() noexcept override {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(wakefd_, &one, sizeof one);  // EAGAIN: already pending
    }

private:
    struct fd_waiters {
        context* reader = nullptr;
        context* writer = nullptr;
    };

    void poll(int timeout) noexcept {
        polled_this_round_ = true;
        epoll_event events[256];
        const int n = epoll_wait(epfd_, events, 256, timeout);
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            const std::uint32_t e = events[i].events;
            if (fd == wakefd_) {
                std::uint64_t count;
                [[maybe_unused]] ssize_t r = ::read(wakefd_, &count, sizeof count);
                continue;
            }
            fd_waiters& w = waiting_[static_cast<std::size_t>(fd)];
            if (w.reader && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) wake(w.reader);
            if (w.writer && (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))) wake(w.writer);
        }
        // n < 0 is EINTR: returning early is allowed, the dispatcher calls again.
    }

    static void wake(context*& slot) noexcept {
        context* ctx = slot;
        slot = nullptr;
        context::active()->schedule(ctx);  // back to awakened(), through the fiber manager
    }

    static inline epoll_scheduler* current_ = nullptr;
    boost::fibers::scheduler::ready_queue_type ready_;
    std::vector<fd_waiters> waiting_;
    int epfd_ = -1;
    int wakefd_ = -1;
    bool polled_this_round_ = false;
};

// Writes all of buf, waiting while the socket is full; false on an error.
bool write_all(int fd, const char* buf, std::size_t len) {
    while (len > 0) {
        const ssize_t n = ::write(fd, buf, len);
        if (n >= 0) {
            buf += n;
            len -= static_cast<std::size_t>(n);
        } else if (errno == EAGAIN) {
            epoll_scheduler::get().wait(fd, true);
        } else if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

// One connection: read what came, write it back, until the client closes.
void serve(int fd) {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            if (!write_all(fd, buf, static_cast<std::size_t>(n))) break;
        } else if (n < 0 && errno == EAGAIN) {
            epoll_scheduler::get().wait(fd, false);
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    ::close(fd);  // also leaves the epoll set
}

}  // namespace

int main(int argc, char** argv) {
    boost::fibers::use_scheduling_algorithm<epoll_scheduler>();
    epoll_scheduler& loop = epoll_scheduler::get();
    const int listener = listen_on(port_argument(argc, argv), SOCK_NONBLOCK | SOCK_CLOEXEC);
    loop.add(listener);
    announce_port(local_port(listener));
    boost::fibers::fiber acceptor([&loop, listener] {
        for (;;) {
            const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                set_nodelay(fd);
                loop.add(fd);
                boost::fibers::fiber(serve, fd).detach();
            } else if (errno == EAGAIN) {
                loop.wait(listener, false);
            } else if (errno != EINTR && errno != ECONNABORTED) {
                // EMFILE and the like: the edge is spent, so look again a little later.
                boost::this_fiber::sleep_for(std::chrono::milliseconds(10));
            }
        }
    });
    acceptor.join();
}
