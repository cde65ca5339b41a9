// Monkey patching: libgreen's definitions of the blocking libc functions.
//
// Rules (docs/monkey.md):
//   * A hook acts only after patching, in a greenlet of a thread that has a hub (not the hub
//     itself), on a pollable fd (socket, pipe, FIFO, character device) the user left blocking.
//     Anything else calls the real function: same result, same errno.
//   * The kernel fd's O_NONBLOCK flag is never left changed, because it belongs to the open file
//     description and would leak into dup'ed fds and other processes. Sockets use MSG_DONTWAIT
//     per call; connect, accept and pipe I/O set O_NONBLOCK just for the one call. For the same
//     reason the kernel's flag has the last word before a hook waits: set through a dup or by
//     another process, it makes the hook return the user's EAGAIN.
//   * Try the call; on EAGAIN wait in the hub for readiness; retry. SO_RCVTIMEO / SO_SNDTIMEO
//     bound the wait exactly as in libc (EAGAIN, or EINPROGRESS for connect); no other timeout
//     is invented. Writes on stream sockets and pipes go on until everything is written, as a
//     blocking call would; so does MSG_WAITALL. errno is set last, after the final switch, and
//     a call that succeeds leaves it as it was.
//   * Two greenlets may block on one fd, as two threads may: the hub takes one waiter per fd
//     and direction, the others wait on a private epoll set. close() and dup2() over the fd
//     wake them all with EBADF, without touching the number again.
//   * Per-fd facts (kind, the user's non-blocking choice, socket timeouts) live in a table
//     indexed by fd, filled lazily on first use so fds opened before patching work too.
#include "hub_impl.hpp"
#include "sys.hpp"

#include <green/hub.hpp>
#include <green/monkey.hpp>
#include <green/socket.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

namespace green::detail {

namespace {

std::atomic<unsigned> patched{0};

bool patched_for(monkey::patch p) noexcept {
    return patched.load(std::memory_order_relaxed) & static_cast<unsigned>(p);
}

// ---- the fd table -----------------------------------------------------------------------

namespace fd_bits_ns {
enum : std::uint32_t {
    known = 1,          // the entry has been filled
    is_socket = 2,
    pollable = 4,       // epoll can wait on it (sockets, pipes, FIFOs, character devices)
    user_nonblock = 8,  // the user asked for O_NONBLOCK: hooks pass through
    is_stream = 16,     // SOCK_STREAM (writes go on until all is written)
};
}  // namespace fd_bits_ns
using namespace fd_bits_ns;
constexpr std::uint32_t none = 0;

struct fd_info {
    std::atomic<std::uint32_t> bits{0};
    std::atomic<std::int64_t> recv_timeout_ns{0};  // SO_RCVTIMEO; 0: none
    std::atomic<std::int64_t> send_timeout_ns{0};  // SO_SNDTIMEO; 0: none
};

// Two levels, lock-free to read: 2^18 chunks of 4096 entries covers fds up to 2^30, far past
// any RLIMIT_NOFILE; chunks are allocated on first use and never freed.
class fd_table {
public:
    static constexpr int chunk_bits = 12;
    static constexpr std::size_t chunk_size = std::size_t{1} << chunk_bits;
    static constexpr std::size_t chunk_count = std::size_t{1} << 18;

    fd_info* find(int fd) const noexcept {
        if (fd < 0 || static_cast<std::size_t>(fd) >= chunk_size * chunk_count) return nullptr;
        fd_info* chunk = chunks_[static_cast<std::size_t>(fd) >> chunk_bits].load(std::memory_order_acquire);
        return chunk ? &chunk[static_cast<std::size_t>(fd) & (chunk_size - 1)] : nullptr;
    }
    fd_info* at(int fd) {
        if (fd < 0 || static_cast<std::size_t>(fd) >= chunk_size * chunk_count) return nullptr;
        auto& slot = chunks_[static_cast<std::size_t>(fd) >> chunk_bits];
        fd_info* chunk = slot.load(std::memory_order_acquire);
        if (!chunk) {
            auto* fresh = new fd_info[chunk_size];
            if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel))
                chunk = fresh;
            else
                delete[] fresh;
        }
        return &chunk[static_cast<std::size_t>(fd) & (chunk_size - 1)];
    }

private:
    std::atomic<fd_info*> chunks_[chunk_count] = {};
};

fd_table& table() {
    static fd_table* t = new fd_table;  // never destroyed: hooks run until the very end
    return *t;
}

// Lengths from this one on (about 146 years) mean "for ever": libc would wait that long too,
// and capping them keeps every deadline computed from them (now + length) from overflowing.
constexpr std::int64_t forever_ns = std::int64_t{1} << 62;

__extension__ typedef __int128 wide_int;

// seconds + fraction in nanoseconds, capped at +-forever_ns whatever the caller passed.
std::int64_t capped_ns(std::int64_t seconds, std::int64_t fraction, std::int64_t fraction_ns) {
    const wide_int ns = wide_int{seconds} * 1'000'000'000 + wide_int{fraction} * fraction_ns;
    if (ns > forever_ns) return forever_ns;
    if (ns < -forever_ns) return -forever_ns;
    return static_cast<std::int64_t>(ns);
}

std::int64_t timeval_ns(const timeval& tv) { return capped_ns(tv.tv_sec, tv.tv_usec, 1000); }
std::int64_t timespec_ns(const timespec& ts) { return capped_ns(ts.tv_sec, ts.tv_nsec, 1); }

// Fills an entry from what the kernel says about fd.
void describe(int fd, fd_info& info) {
    info.bits.store(0, std::memory_order_relaxed);
    info.recv_timeout_ns.store(0, std::memory_order_relaxed);
    info.send_timeout_ns.store(0, std::memory_order_relaxed);
    struct stat st;
    if (fstat(fd, &st) != 0) return;  // bad fd: the real call reports it
    std::uint32_t bits = known;
    if (S_ISSOCK(st.st_mode)) {
        bits |= is_socket | pollable;
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM) bits |= is_stream;
        timeval tv{};
        len = sizeof tv;
        if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0) info.recv_timeout_ns.store(timeval_ns(tv));
        len = sizeof tv;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0) info.send_timeout_ns.store(timeval_ns(tv));
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        bits |= pollable | is_stream;
    }
    int flags = sys::fcntl(fd, F_GETFL, 0);
    if (flags >= 0 && (flags & O_NONBLOCK)) bits |= user_nonblock;
    info.bits.store(bits, std::memory_order_relaxed);
}

// A socket call failed with ENOTSOCK on an fd the table holds for a socket: the number was
// closed behind the hooks' back (fclose, a raw system call) and reused for something else.
// Describes it afresh; true when the caller should start over. errno is kept.
bool stale_socket_entry(int fd, fd_info& info) {
    const int e = errno;
    if (e != ENOTSOCK) return false;
    describe(fd, info);
    errno = e;
    return !(info.bits.load(std::memory_order_relaxed) & is_socket);
}

// The entry for fd if a hook should act on it here and now; nullptr means "call libc".
fd_info* cooperative_fd(int fd) {
    if (!patched_for(monkey::patch::socket)) return nullptr;
    thread_core* tc = tls_core;
    if (!tc || !tc->run_queue || tc->current == tc->hub || tls_pool_worker) return nullptr;
    fd_info* info = table().at(fd);
    if (!info) return nullptr;
    std::uint32_t bits = info->bits.load(std::memory_order_relaxed);
    if (!(bits & known)) {
        describe(fd, *info);
        bits = info->bits.load(std::memory_order_relaxed);
    }
    if (!(bits & known) || !(bits & pollable) || (bits & user_nonblock)) return nullptr;
    return info;
}

bool may_wait_here() noexcept {
    thread_core* tc = tls_core;
    return tc && tc->run_queue && tc->current != tc->hub && !tls_pool_worker;
}

// Greenlets of this thread waiting for one fd through a private epoll set (wait_for_any with an
// owner), so that close() and dup2() can wake them as cancel_wait wakes the hub's waiters.
struct side_wait {
    int fd;
    int set;
};
thread_local std::vector<side_wait> side_waits;

void cancel_side_waits(int fd) noexcept {
    for (const side_wait& w : side_waits)
        if (w.fd == fd) green::cancel_wait(w.set);  // its wait_fd(set) raises EBADF
}

// A hooked call just made fd. If the number was last closed behind the hooks' back (fclose,
// close_range, a raw system call), this thread's hub may still hold a registration for the
// closed file under it, which would keep the new fd's waits from ever being registered:
// drop it (and wake anything still waiting on the old file, with EBADF).
void new_fd(int fd) noexcept {
    green::cancel_wait(fd);
    cancel_side_waits(fd);
}

void record(int fd, std::uint32_t bits) {
    new_fd(fd);
    if (fd_info* info = table().at(fd)) {
        info->bits.store(bits | known, std::memory_order_relaxed);
        info->recv_timeout_ns.store(0, std::memory_order_relaxed);
        info->send_timeout_ns.store(0, std::memory_order_relaxed);
    }
}

void copy_entry(int from, int to) {
    new_fd(to);
    fd_info* src = table().find(from);
    fd_info* dst = table().at(to);
    if (!dst) return;
    if (!src) {
        dst->bits.store(0, std::memory_order_relaxed);
        return;
    }
    dst->bits.store(src->bits.load(std::memory_order_relaxed), std::memory_order_relaxed);
    dst->recv_timeout_ns.store(src->recv_timeout_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
    dst->send_timeout_ns.store(src->send_timeout_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void set_user_nonblock(int fd, bool on) {
    fd_info* info = table().at(fd);
    if (!info) return;
    std::uint32_t bits = info->bits.load(std::memory_order_relaxed);
    if (!(bits & known)) return;  // described from the kernel on first use
    info->bits.store(on ? bits | user_nonblock : bits & ~std::uint32_t{user_nonblock}, std::memory_order_relaxed);
}

// ---- waiting ----------------------------------------------------------------------------

// Sleeps on a hub timer. errno is kept: the hub and the greenlets it runs meanwhile change it,
// and a successful libc sleep leaves it alone.
void hub_sleep(std::int64_t ns) {
    const int saved = errno;
    green::sleep(std::chrono::nanoseconds(std::min(ns, forever_ns)));
    errno = saved;
}

bool valid_request(const timespec* req) {
    return req && req->tv_sec >= 0 && req->tv_nsec >= 0 && req->tv_nsec < 1'000'000'000;
}

std::int64_t deadline_after(std::int64_t timeout_ns) { return timeout_ns > 0 ? now_ns() + timeout_ns : -1; }

// poll's events as epoll's. Linux gives both the same bits; the mapping is spelled out so that
// no event poll can wait for is left behind (POLLRDNORM & co. included).
int events_to_epoll(short events) {
    int out = 0;
    if (events & POLLIN) out |= EPOLLIN;
    if (events & POLLOUT) out |= EPOLLOUT;
    if (events & POLLPRI) out |= EPOLLPRI;
    if (events & POLLRDHUP) out |= EPOLLRDHUP;
    if (events & POLLRDNORM) out |= EPOLLRDNORM;
    if (events & POLLRDBAND) out |= EPOLLRDBAND;
    if (events & POLLWRNORM) out |= EPOLLWRNORM;
    if (events & POLLWRBAND) out |= EPOLLWRBAND;
    if (events & POLLMSG) out |= EPOLLMSG;
    return out;
}

// Waits in the hub until one of the fds has one of its events, or the timeout: the fds go into
// a private epoll set, and the hub waits for that set to become readable. True when an event
// came, false at the timeout. With owner >= 0 the set stands for a wait on that fd, which
// closing it cancels (std::system_error EBADF).
bool wait_for_any(const pollfd* fds, nfds_t n, std::optional<duration> timeout, int owner = -1) {
    const int set = epoll_create1(EPOLL_CLOEXEC);
    if (set < 0) {  // out of fds: block like libc
        const std::int64_t ms = timeout ? (timeout->ns.count() + 999'999) / 1'000'000 : -1;
        std::vector<pollfd> copy(fds, fds + n);
        return sys::poll(copy.data(), n, static_cast<int>(std::min<std::int64_t>(ms, INT_MAX))) != 0;
    }
    bool any = false;
    for (nfds_t i = 0; i < n; ++i) {
        if (fds[i].fd < 0) continue;
        epoll_event ev{};
        ev.events = static_cast<std::uint32_t>(events_to_epoll(fds[i].events));
        ev.data.fd = fds[i].fd;
        if (epoll_ctl(set, EPOLL_CTL_ADD, fds[i].fd, &ev) == 0) {
            any = true;
        } else if (errno == EEXIST) {  // the same fd twice: wait for the union of its events
            epoll_event old{};
            old.events = ev.events;
            for (nfds_t j = 0; j < i; ++j)
                if (fds[j].fd == fds[i].fd) old.events |= static_cast<std::uint32_t>(events_to_epoll(fds[j].events));
            epoll_ctl(set, EPOLL_CTL_MOD, fds[i].fd, &old);
        }
    }
    struct closer {
        int set;
        bool side;
        ~closer() {
            if (side)
                std::erase_if(side_waits, [this](const side_wait& w) { return w.set == set; });
            green::cancel_wait(set);
            sys::close(set);
        }
    } close_set{set, owner >= 0};
    if (owner >= 0) side_waits.push_back(side_wait{owner, set});
    if (!any) {  // poll with no fds: a sleep, for ever without a timeout (as libc, until a signal)
        green::sleep(timeout ? *timeout : duration(std::chrono::nanoseconds(forever_ns)));
        return false;
    }
    return wait_fd(set, false, timeout);
}

// poll and select: waits for any of the fds until the deadline (-1: none) and looks again with
// probe(). A wake-up after which probe() finds nothing (another greenlet took the data first)
// waits on, as libc's call would sleep on. Returns probe()'s answer, or 0 at the deadline.
template <class Probe>
int wait_and_probe(const pollfd* fds, nfds_t n, std::int64_t deadline, Probe&& probe) {
    for (;;) {
        std::optional<duration> left;
        if (deadline >= 0) {
            const std::int64_t remaining = deadline - now_ns();
            if (remaining <= 0) return 0;
            left = std::chrono::nanoseconds(remaining);
        }
        try {
            wait_for_any(fds, n, left);
        } catch (const std::system_error& e) {  // the hub cannot watch the set (ENOMEM, ENOSPC)
            errno = e.code().value();
            return -1;
        }
        const int ready = probe();
        if (ready != 0) return ready;
    }
}

// Waits for readiness until the deadline; false (errno set) when the wait must end the call.
bool wait_ready_fd(int fd, bool write, std::int64_t deadline, int timeout_errno, bool guess = false) {
    std::optional<duration> left;
    if (deadline >= 0) {
        std::int64_t remaining = deadline - now_ns();
        if (remaining <= 0) {
            errno = timeout_errno;
            return false;
        }
        left = std::chrono::nanoseconds(remaining);
    }
    try {
        bool ready;
        try {
            ready = wait_fd(fd, write, left, guess);
        } catch (const green::concurrent_use_error&) {
            // The hub takes one waiter per fd and direction. Another greenlet is it: wait on a
            // private epoll set instead, as poll() does, so that two greenlets can block on one
            // fd as two threads can (several accept()s on one listener, readers of one pipe).
            const pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
            ready = wait_for_any(&p, 1, left, fd);
        }
        if (!ready) {
            errno = timeout_errno;
            return false;
        }
    } catch (const std::system_error& e) {
        errno = e.code().value();  // EBADF: closed by another greenlet while we waited
        return false;
    }
    return true;
}

// The fd's O_NONBLOCK as the kernel has it now. The table follows the calls that set it on
// this fd, but the flag belongs to the open file description, which dup'ed fds and other
// processes share and may have set it through: before a hook waits, the kernel has the last
// word. (Our own nonblocking_once has restored the flag by then.)
bool kernel_nonblocking(int fd) {
    const int flags = sys::fcntl(fd, F_GETFL, 0);
    return flags >= 0 && (flags & O_NONBLOCK);
}

// Calls attempt() until it does not fail with EAGAIN, waiting in between. A success leaves
// errno as the caller had it, as libc does: the failed attempts, the hub and the greenlets
// that ran during the wait all changed it.
template <class F>
ssize_t until_ready(int fd, bool write, std::int64_t deadline, F&& attempt) {
    const int saved = errno;
    for (;;) {
        ssize_t r = attempt();
        if (r >= 0) {
            errno = saved;
            return r;
        }
        const int e = errno;
        if (e != EAGAIN && e != EWOULDBLOCK) return -1;
        if (kernel_nonblocking(fd)) {  // the user's EAGAIN, not ours
            errno = e;
            return -1;
        }
        if (!wait_ready_fd(fd, write, deadline, EAGAIN)) return -1;
    }
}

// A stream write: on until all n bytes are written, as a blocking call would be. A later
// error or timeout after some bytes went out returns the count written.
template <class F>
ssize_t write_all(int fd, std::size_t n, std::int64_t deadline, F&& attempt) {
    const int saved = errno;
    std::size_t done = 0;
    while (done < n || n == 0) {
        ssize_t r = until_ready(fd, true, deadline, [&] { return attempt(done); });
        if (r < 0) {
            if (done == 0) return -1;
            break;
        }
        done += static_cast<std::size_t>(r);
        if (n == 0) break;
    }
    errno = saved;
    return static_cast<ssize_t>(done);
}

// MSG_WAITALL means something on stream sockets only: wait until all n bytes have come.
bool wait_for_all(const fd_info& info, int flags) {
    return (flags & MSG_WAITALL) && (info.bits.load(std::memory_order_relaxed) & is_stream);
}

// A MSG_WAITALL receive: on until n bytes came, as the blocking call is; the end of the
// stream, an error or the timeout end it early with what came (-1 if nothing did).
// attempt(done) receives into the buffer from offset done; with MSG_PEEK nothing is consumed,
// so each attempt looks again from the start (offset 0) and the wait is for more data.
template <class F>
ssize_t read_all(int fd, std::size_t n, std::int64_t deadline, int flags, F&& attempt) {
    const int saved = errno;
    std::size_t done = 0;
    while (done < n) {
        const std::size_t from = (flags & MSG_PEEK) ? 0 : done;
        const ssize_t r = until_ready(fd, false, deadline, [&] { return attempt(from); });
        if (r < 0) {
            if (done == 0) return -1;
            break;
        }
        if (r == 0) break;  // the peer closed its side
        done = from + static_cast<std::size_t>(r);
        if ((flags & MSG_PEEK) && done < n && !wait_ready_fd(fd, false, deadline, EAGAIN)) break;
    }
    errno = saved;
    return static_cast<ssize_t>(done);
}

// Runs one call with O_NONBLOCK set on the fd, then restores the flag.
template <class F>
auto nonblocking_once(int fd, F&& call) -> decltype(call()) {
    const int flags = sys::fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -1;
    if (flags & O_NONBLOCK) return call();
    sys::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    auto r = call();
    const int e = errno;
    sys::fcntl(fd, F_SETFL, flags);
    errno = e;
    return r;
}

// Copies an iovec array and drops the first `skip` bytes of it.
std::vector<iovec> advance(const iovec* iov, int count, std::size_t skip) {
    std::vector<iovec> out;
    for (int i = 0; i < count; ++i) {
        iovec v = iov[i];
        if (skip >= v.iov_len) {
            skip -= v.iov_len;
            continue;
        }
        v.iov_base = static_cast<char*>(v.iov_base) + skip;
        v.iov_len -= skip;
        skip = 0;
        out.push_back(v);
    }
    return out;
}

std::size_t total(const iovec* iov, int count) {
    std::size_t n = 0;
    for (int i = 0; i < count; ++i) n += iov[i].iov_len;
    return n;
}

// ---- the hooked calls, once a hook has decided to act ------------------------------------

ssize_t recv_hooked(int fd, fd_info& info, void* buf, std::size_t n, int flags, sockaddr* from, socklen_t* len) {
    if (flags & MSG_DONTWAIT) return sys::recvfrom(fd, buf, n, flags, from, len);
    const std::int64_t deadline = deadline_after(info.recv_timeout_ns.load(std::memory_order_relaxed));
    auto attempt = [&](std::size_t done) {
        return sys::recvfrom(fd, static_cast<char*>(buf) + done, n - done, flags | MSG_DONTWAIT, from, len);
    };
    if (wait_for_all(info, flags)) return read_all(fd, n, deadline, flags, attempt);
    // As green::socket::recv: after a short read, wait for the hub's next poll before trying.
    const bool stream = info.bits.load(std::memory_order_relaxed) & is_stream;
    if (stream && probably_drained(fd)) {
        const int saved = errno;  // until_ready keeps the caller's errno; the wait changes it
        if (!wait_ready_fd(fd, false, deadline, EAGAIN, true)) return -1;
        errno = saved;
    }
    const ssize_t r = until_ready(fd, false, deadline, [&] { return attempt(0); });
    if (stream && r > 0 && static_cast<std::size_t>(r) < n && !(flags & MSG_PEEK)) note_drained(fd);
    return r;
}

ssize_t send_hooked(int fd, fd_info& info, const void* buf, std::size_t n, int flags, const sockaddr* to, socklen_t len) {
    if (flags & MSG_DONTWAIT) return sys::sendto(fd, buf, n, flags, to, len);
    const std::int64_t deadline = deadline_after(info.send_timeout_ns.load(std::memory_order_relaxed));
    auto attempt = [&](std::size_t done) {
        return sys::sendto(fd, static_cast<const char*>(buf) + done, n - done, flags | MSG_DONTWAIT, to, len);
    };
    if (info.bits.load(std::memory_order_relaxed) & is_stream) return write_all(fd, n, deadline, attempt);
    return until_ready(fd, true, deadline, [&] { return attempt(0); });
}

ssize_t pipe_read(int fd, void* buf, std::size_t n) {
    return until_ready(fd, false, -1, [&] { return nonblocking_once(fd, [&] { return sys::read(fd, buf, n); }); });
}

ssize_t pipe_write(int fd, const void* buf, std::size_t n) {
    return write_all(fd, n, -1, [&](std::size_t done) {
        return nonblocking_once(fd, [&] { return sys::write(fd, static_cast<const char*>(buf) + done, n - done); });
    });
}

// fcntl and fcntl64: the real call, then what it changed about the user's non-blocking choice
// and the fds it made. (Both are F_GETLK and friends with 64-bit offsets on 64-bit Linux, so
// the one real function serves both.)
int tracked_fcntl(int fd, int cmd, long arg) {
    const int r = sys::fcntl(fd, cmd, arg);
    if (r >= 0) {
        if (cmd == F_SETFL) set_user_nonblock(fd, arg & O_NONBLOCK);
        if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) copy_entry(fd, r);
    }
    return r;
}

}  // namespace

void forget_fd_info(int fd) noexcept {
    if (fd_info* info = table().find(fd)) info->bits.store(0, std::memory_order_relaxed);
}

}  // namespace green::detail

namespace green::monkey {

void patch_all() {
    green::get_hub();
    detail::patched.fetch_or(static_cast<unsigned>(patch::time) | static_cast<unsigned>(patch::socket) |
                             static_cast<unsigned>(patch::dns));
}

void patch_time() {
    green::get_hub();
    detail::patched.fetch_or(static_cast<unsigned>(patch::time));
}

void patch_socket() {
    green::get_hub();
    detail::patched.fetch_or(static_cast<unsigned>(patch::socket) | static_cast<unsigned>(patch::dns));
}

bool is_patched() noexcept { return detail::patched.load() == 7u; }

bool is_patched(patch what) noexcept { return detail::patched_for(what); }

}  // namespace green::monkey

// ---- the interposed libc functions ------------------------------------------------------

using namespace green::detail;

extern "C" {

unsigned int sleep(unsigned int seconds) {
    if (!patched_for(green::monkey::patch::time) || !may_wait_here()) return sys::sleep(seconds);
    hub_sleep(std::int64_t{seconds} * 1'000'000'000);
    return 0;
}

int usleep(useconds_t microseconds) {
    if (!patched_for(green::monkey::patch::time) || !may_wait_here()) return sys::usleep(microseconds);
    hub_sleep(std::int64_t{microseconds} * 1000);
    return 0;
}

int nanosleep(const timespec* req, timespec* rem) {
    // An invalid request goes to libc, which fails at once with its own errno (EFAULT, EINVAL).
    if (!patched_for(green::monkey::patch::time) || !may_wait_here() || !valid_request(req))
        return sys::nanosleep(req, rem);
    // Never interrupted by a signal, so `rem` is never written, as in libc without EINTR.
    hub_sleep(timespec_ns(*req));
    return 0;
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
    const bool supported = clock == CLOCK_MONOTONIC || clock == CLOCK_REALTIME || clock == CLOCK_BOOTTIME;
    if (!patched_for(green::monkey::patch::time) || !may_wait_here() || !supported || !valid_request(req))
        return sys::clock_nanosleep(clock, flags, req, rem);
    std::int64_t wait_ns = timespec_ns(*req);
    if ((flags & TIMER_ABSTIME) && wait_ns < forever_ns) {
        timespec now{};
        clock_gettime(clock, &now);
        wait_ns -= timespec_ns(now);
        if (wait_ns <= 0) return 0;  // already past: no wait, no yield
    }
    hub_sleep(wait_ns);
    return 0;  // returns the error number, not -1/errno
}

ssize_t read(int fd, void* buf, size_t n) {
    fd_info* info = cooperative_fd(fd);
    if (!info) return sys::read(fd, buf, n);
    if (info->bits.load(std::memory_order_relaxed) & is_socket) {
        const ssize_t r = recv_hooked(fd, *info, buf, n, 0, nullptr, nullptr);
        return r < 0 && stale_socket_entry(fd, *info) ? read(fd, buf, n) : r;
    }
    return pipe_read(fd, buf, n);
}

ssize_t write(int fd, const void* buf, size_t n) {
    fd_info* info = cooperative_fd(fd);
    if (!info) return sys::write(fd, buf, n);
    if (info->bits.load(std::memory_order_relaxed) & is_socket) {
        // write() on a socket is send() with no flags (SIGPIPE included, as in libc).
        const ssize_t r = send_hooked(fd, *info, buf, n, 0, nullptr, 0);
        return r < 0 && stale_socket_entry(fd, *info) ? write(fd, buf, n) : r;
    }
    return pipe_write(fd, buf, n);
}

ssize_t readv(int fd, const iovec* iov, int count) {
    // A count the kernel refuses goes to libc, which fails at once with EINVAL (recvmsg, used
    // below for sockets, would say EMSGSIZE; an empty pipe read would say 0).
    fd_info* info = count >= 0 && count <= IOV_MAX ? cooperative_fd(fd) : nullptr;
    if (!info) return sys::readv(fd, iov, count);
    if (info->bits.load(std::memory_order_relaxed) & is_socket) {
        const std::int64_t deadline = deadline_after(info->recv_timeout_ns.load(std::memory_order_relaxed));
        const ssize_t r = until_ready(fd, false, deadline, [&] {
            msghdr msg{};
            msg.msg_iov = const_cast<iovec*>(iov);
            msg.msg_iovlen = static_cast<std::size_t>(count);
            return sys::recvmsg(fd, &msg, MSG_DONTWAIT);
        });
        return r < 0 && stale_socket_entry(fd, *info) ? readv(fd, iov, count) : r;
    }
    return until_ready(fd, false, -1, [&] { return nonblocking_once(fd, [&] { return sys::readv(fd, iov, count); }); });
}

ssize_t writev(int fd, const iovec* iov, int count) {
    fd_info* info = count >= 0 && count <= IOV_MAX ? cooperative_fd(fd) : nullptr;  // as readv
    if (!info) return sys::writev(fd, iov, count);
    const std::size_t n = total(iov, count);
    if (info->bits.load(std::memory_order_relaxed) & is_socket) {
        const std::int64_t deadline = deadline_after(info->send_timeout_ns.load(std::memory_order_relaxed));
        const ssize_t r = write_all(fd, n, deadline, [&](std::size_t done) {
            std::vector<iovec> rest = advance(iov, count, done);
            msghdr msg{};
            msg.msg_iov = rest.data();
            msg.msg_iovlen = rest.size();
            return sys::sendmsg(fd, &msg, MSG_DONTWAIT);
        });
        return r < 0 && stale_socket_entry(fd, *info) ? writev(fd, iov, count) : r;
    }
    return write_all(fd, n, -1, [&](std::size_t done) {
        std::vector<iovec> rest = advance(iov, count, done);
        return nonblocking_once(fd, [&] { return sys::writev(fd, rest.data(), static_cast<int>(rest.size())); });
    });
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    fd_info* info = cooperative_fd(fd);
    if (!info) return sys::recv(fd, buf, n, flags);
    return recv_hooked(fd, *info, buf, n, flags, nullptr, nullptr);
}

ssize_t recvfrom(int fd, void* __restrict buf, size_t n, int flags, sockaddr* __restrict from, socklen_t* __restrict len) {
    fd_info* info = cooperative_fd(fd);
    if (!info) return sys::recvfrom(fd, buf, n, flags, from, len);
    return recv_hooked(fd, *info, buf, n, flags, from, len);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    fd_info* info = cooperative_fd(fd);
    if (!info || (flags & MSG_DONTWAIT)) return sys::recvmsg(fd, msg, flags);
    const std::int64_t deadline = deadline_after(info->recv_timeout_ns.load(std::memory_order_relaxed));
    if (!wait_for_all(*info, flags))
        return until_ready(fd, false, deadline, [&] { return sys::recvmsg(fd, msg, flags | MSG_DONTWAIT); });
    // MSG_WAITALL: the parts go into the rest of the buffers. Ancillary data goes into the
    // caller's buffer until a part brings some; msg_flags collects every part's.
    const int count = static_cast<int>(msg->msg_iovlen);
    const msghdr given = *msg;
    bool got_control = false;
    int part_flags = 0;
    const ssize_t r = read_all(fd, total(msg->msg_iov, count), deadline, flags, [&](std::size_t done) {
        std::vector<iovec> rest = advance(given.msg_iov, count, done);
        msghdr part = given;
        part.msg_iov = rest.data();
        part.msg_iovlen = rest.size();
        if (done > 0) {
            part.msg_name = nullptr;
            part.msg_namelen = 0;
        }
        if (got_control) {
            part.msg_control = nullptr;
            part.msg_controllen = 0;
        }
        const ssize_t got = sys::recvmsg(fd, &part, flags | MSG_DONTWAIT);
        if (got < 0) return got;
        if (done == 0) msg->msg_namelen = part.msg_namelen;
        if (!got_control) msg->msg_controllen = part.msg_controllen;
        got_control = got_control || part.msg_controllen > 0;
        part_flags |= part.msg_flags;
        return got;
    });
    msg->msg_flags = part_flags;
    return r;
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    fd_info* info = cooperative_fd(fd);
    if (!info) return sys::send(fd, buf, n, flags);
    return send_hooked(fd, *info, buf, n, flags, nullptr, 0);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len) {
    fd_info* info = cooperative_fd(fd);
    if (!info) return sys::sendto(fd, buf, n, flags, to, len);
    return send_hooked(fd, *info, buf, n, flags, to, len);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    fd_info* info = cooperative_fd(fd);
    if (!info || (flags & MSG_DONTWAIT)) return sys::sendmsg(fd, msg, flags);
    const std::int64_t deadline = deadline_after(info->send_timeout_ns.load(std::memory_order_relaxed));
    if (!(info->bits.load(std::memory_order_relaxed) & is_stream))
        return until_ready(fd, true, deadline, [&] { return sys::sendmsg(fd, msg, flags | MSG_DONTWAIT); });
    const int count = static_cast<int>(msg->msg_iovlen);
    return write_all(fd, total(msg->msg_iov, count), deadline, [&](std::size_t done) {
        std::vector<iovec> rest = advance(msg->msg_iov, count, done);
        msghdr part = *msg;
        part.msg_iov = rest.data();
        part.msg_iovlen = rest.size();
        if (done > 0) {  // the ancillary data (SCM_RIGHTS...) went with the first bytes
            part.msg_control = nullptr;
            part.msg_controllen = 0;
        }
        return sys::sendmsg(fd, &part, flags | MSG_DONTWAIT);
    });
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
    fd_info* info = cooperative_fd(fd);
    if (!info || !(info->bits.load(std::memory_order_relaxed) & is_socket)) return sys::connect(fd, addr, len);
    const int saved = errno;
    auto attempt = [&] { return nonblocking_once(fd, [&] { return sys::connect(fd, addr, len); }); };
    if (attempt() == 0) return 0;
    if ((errno == EINPROGRESS || errno == EALREADY || errno == EAGAIN) && kernel_nonblocking(fd)) return -1;  // the user's
    // SO_SNDTIMEO bounds a blocking connect; when it expires libc reports EINPROGRESS.
    const std::int64_t deadline = deadline_after(info->send_timeout_ns.load(std::memory_order_relaxed));
    if (errno == EAGAIN && addr && addr->sa_family == AF_UNIX) {
        // A Unix listener with a full backlog. libc's connect sleeps until the listener accepts,
        // and nothing can be polled for that (the connecting socket is always writable): try
        // again after pauses growing from 1 ms to 50 ms, until SO_SNDTIMEO, which ends it with
        // EAGAIN as in libc.
        std::int64_t pause = 1'000'000;
        for (;;) {
            std::int64_t wait = pause;
            if (deadline >= 0) {
                const std::int64_t left = deadline - now_ns();
                if (left <= 0) {
                    errno = EAGAIN;
                    return -1;
                }
                wait = std::min(wait, left);
            }
            hub_sleep(wait);
            pause = std::min<std::int64_t>(pause * 2, 50'000'000);
            if (attempt() == 0) {
                errno = saved;
                return 0;
            }
            if (errno != EAGAIN) return -1;
        }
    }
    // EALREADY: an earlier connect timed out and the handshake is still under way; the blocking
    // call waits for it all the same, and says EALREADY if the timeout ends that wait too.
    const int pending = errno;
    if (pending != EINPROGRESS && pending != EALREADY) return -1;
    if (!wait_ready_fd(fd, true, deadline, pending)) return -1;
    int error = 0;
    socklen_t error_len = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0) return -1;
    if (error) {
        errno = error;
        return -1;
    }
    // Connected. One more connect() moves the socket from 'connecting' to 'connected' as the
    // blocking call leaves it, so that a later connect() says EISCONN as in libc, not 0.
    sys::connect(fd, addr, len);
    errno = saved;
    return 0;
}

int accept4(int fd, sockaddr* __restrict addr, socklen_t* __restrict len, int flags) {
    fd_info* info = cooperative_fd(fd);
    int r;
    if (!info) {
        r = sys::accept4(fd, addr, len, flags);
    } else {
        const std::int64_t deadline = deadline_after(info->recv_timeout_ns.load(std::memory_order_relaxed));
        const socklen_t given = len ? *len : 0;
        r = static_cast<int>(until_ready(fd, false, deadline, [&] {
            if (len) *len = given;
            return nonblocking_once(fd, [&] { return sys::accept4(fd, addr, len, flags); });
        }));
    }
    if (r >= 0) {
        // The new socket is a clone of the listener: same type, same SO_RCVTIMEO/SO_SNDTIMEO.
        const fd_info* listener = info ? info : table().find(fd);
        const std::uint32_t bits = listener ? listener->bits.load(std::memory_order_relaxed) : none;
        if (!(bits & known)) {
            new_fd(r);
            forget_fd_info(r);  // described from the kernel on first use
        } else if (fd_info* entry = table().at(r)) {
            record(r, is_socket | pollable | (bits & is_stream) | ((flags & SOCK_NONBLOCK) ? user_nonblock : none));
            entry->recv_timeout_ns.store(listener->recv_timeout_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
            entry->send_timeout_ns.store(listener->send_timeout_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
        }
    }
    return r;
}

int accept(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) { return accept4(fd, addr, len, 0); }

int poll(pollfd* fds, nfds_t n, int timeout_ms) {
    if (!patched_for(green::monkey::patch::socket) || !may_wait_here() || timeout_ms == 0)
        return sys::poll(fds, n, timeout_ms);
    // Look first, without waiting: ready now, or an error, returns at once.
    const int saved = errno;
    int ready = sys::poll(fds, n, 0);
    if (ready != 0) return ready;
    const std::int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + std::int64_t{timeout_ms} * 1'000'000;
    ready = wait_and_probe(fds, n, deadline, [&] { return sys::poll(fds, n, 0); });
    if (ready >= 0) errno = saved;
    return ready;
}

int select(int nfds, fd_set* __restrict rd, fd_set* __restrict wr, fd_set* __restrict ex, timeval* __restrict timeout) {
    // A zero timeout, and whatever the kernel refuses at once (a negative timeout, a bad nfds),
    // go straight to libc.
    if (!patched_for(green::monkey::patch::socket) || !may_wait_here() || nfds < 0 || nfds > FD_SETSIZE ||
        (timeout && ((timeout->tv_sec == 0 && timeout->tv_usec == 0) || timeout->tv_sec < 0 || timeout->tv_usec < 0)))
        return sys::select(nfds, rd, wr, ex, timeout);
    const int saved = errno;
    const std::int64_t start = now_ns();
    const std::int64_t length = timeout ? timeval_ns(*timeout) : -1;
    std::vector<pollfd> fds;
    for (int fd = 0; fd < nfds; ++fd) {
        short events = 0;
        if (rd && FD_ISSET(fd, rd)) events |= POLLIN;
        if (wr && FD_ISSET(fd, wr)) events |= POLLOUT;
        if (ex && FD_ISSET(fd, ex)) events |= POLLPRI;
        if (events) fds.push_back(pollfd{fd, events, 0});
    }
    timeval zero{0, 0};
    fd_set r0, w0, e0;
    auto probe = [&] {
        if (rd) r0 = *rd;
        if (wr) w0 = *wr;
        if (ex) e0 = *ex;
        return sys::select(nfds, rd ? &r0 : nullptr, wr ? &w0 : nullptr, ex ? &e0 : nullptr, &zero);
    };
    int ready = probe();
    if (ready == 0) ready = wait_and_probe(fds.data(), fds.size(), timeout ? start + length : -1, probe);
    if (timeout) {  // Linux's select leaves the time not slept in *timeout, whatever the outcome
        std::int64_t left = length - (now_ns() - start);
        if (left < 0) left = 0;
        timeout->tv_sec = static_cast<time_t>(left / 1'000'000'000);
        timeout->tv_usec = static_cast<suseconds_t>((left % 1'000'000'000) / 1000);
    }
    if (ready < 0) return -1;  // the sets are left as they were, as the kernel does
    if (rd) *rd = r0;
    if (wr) *wr = w0;
    if (ex) *ex = e0;
    errno = saved;
    return ready;
}

// A signal mask has to be swapped in atomically with the wait, which a wait in the hub cannot
// do: ppoll, pselect and epoll_pwait with one are libc's calls, and so block the thread.
int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask) {
    if (!patched_for(green::monkey::patch::socket) || !may_wait_here() || sigmask ||
        (timeout && (!valid_request(timeout) || (timeout->tv_sec == 0 && timeout->tv_nsec == 0))))
        return sys::ppoll(fds, n, timeout, sigmask);
    const int saved = errno;
    int ready = sys::poll(fds, n, 0);
    if (ready != 0) return ready;
    const std::int64_t deadline = timeout ? now_ns() + timespec_ns(*timeout) : -1;
    ready = wait_and_probe(fds, n, deadline, [&] { return sys::poll(fds, n, 0); });
    if (ready >= 0) errno = saved;
    return ready;
}

int pselect(int nfds, fd_set* __restrict rd, fd_set* __restrict wr, fd_set* __restrict ex,
            const timespec* __restrict timeout, const sigset_t* __restrict sigmask) {
    if (!patched_for(green::monkey::patch::socket) || !may_wait_here() || sigmask || (timeout && !valid_request(timeout)))
        return sys::pselect(nfds, rd, wr, ex, timeout, sigmask);
    if (!timeout) return select(nfds, rd, wr, ex, nullptr);
    // select's wait, on a copy: pselect leaves *timeout alone. Rounded up to whole microseconds,
    // so that it never returns early.
    timeval tv{timeout->tv_sec, static_cast<suseconds_t>((timeout->tv_nsec + 999) / 1000)};
    if (tv.tv_usec == 1'000'000) {
        ++tv.tv_sec;
        tv.tv_usec = 0;
    }
    return select(nfds, rd, wr, ex, &tv);
}

// An epoll set is itself pollable: the wait is on the set's fd, and the events are read with a
// zero timeout once it is readable (gevent removes epoll from select instead; C code cannot be
// steered away from it).
int epoll_pwait(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* sigmask) {
    if (!patched_for(green::monkey::patch::socket) || !may_wait_here() || sigmask || timeout_ms == 0 || max <= 0)
        return sys::epoll_pwait(epfd, events, max, timeout_ms, sigmask);
    const int saved = errno;
    auto probe = [&] { return sys::epoll_pwait(epfd, events, max, 0, nullptr); };
    int ready = probe();
    if (ready != 0) return ready;  // events, or libc's error (EBADF, EINVAL for a fd that is no epoll set)
    const pollfd set{epfd, POLLIN, 0};
    const std::int64_t deadline = timeout_ms < 0 ? -1 : now_ns() + std::int64_t{timeout_ms} * 1'000'000;
    ready = wait_and_probe(&set, 1, deadline, probe);
    if (ready >= 0) errno = saved;
    return ready;
}

int epoll_wait(int epfd, epoll_event* events, int max, int timeout_ms) {
    return epoll_pwait(epfd, events, max, timeout_ms, nullptr);
}

int close(int fd) {
    // Waiters on fd (in this thread's hub) wake with EBADF before the number can be reused, and
    // the hub's epoll registration goes first (epoll would drop it silently otherwise).
    if (patched_for(green::monkey::patch::socket)) {
        green::cancel_wait(fd);
        cancel_side_waits(fd);
    }
    forget_fd_info(fd);
    return sys::close(fd);
}

int socket(int domain, int type, int protocol) noexcept {
    const int fd = sys::socket(domain, type, protocol);
    if (fd >= 0)
        record(fd, is_socket | pollable | (((type & 0xf) == SOCK_STREAM) ? is_stream : none) |
                       ((type & SOCK_NONBLOCK) ? user_nonblock : none));
    return fd;
}

int socketpair(int domain, int type, int protocol, int fds[2]) noexcept {
    static std::atomic<int (*)(int, int, int, int*)> real{nullptr};
    auto* f = real.load();
    if (!f) {
        f = reinterpret_cast<int (*)(int, int, int, int*)>(dlsym(RTLD_NEXT, "socketpair"));
        real.store(f);
    }
    const int r = f ? f(domain, type, protocol, fds) : static_cast<int>(syscall(SYS_socketpair, domain, type, protocol, fds));
    if (r == 0) {
        const std::uint32_t bits = is_socket | pollable | (((type & 0xf) == SOCK_STREAM) ? is_stream : none) |
                                   ((type & SOCK_NONBLOCK) ? user_nonblock : none);
        record(fds[0], bits);
        record(fds[1], bits);
    }
    return r;
}

int pipe2(int fds[2], int flags) noexcept {
    const int r = static_cast<int>(syscall(SYS_pipe2, fds, flags));
    if (r == 0) {
        const std::uint32_t bits = pollable | is_stream | ((flags & O_NONBLOCK) ? user_nonblock : none);
        record(fds[0], bits);
        record(fds[1], bits);
    }
    return r;
}

int pipe(int fds[2]) noexcept { return pipe2(fds, 0); }

int dup(int fd) noexcept {
    const int r = static_cast<int>(syscall(SYS_dup, fd));
    if (r >= 0) copy_entry(fd, r);
    return r;
}

int dup3(int from, int to, int flags) noexcept {
    // `to` is closed first if open, so its waiters wake with EBADF and its epoll registration
    // goes before the number refers to the new file; but only when the call will succeed: one
    // that fails (a bad `from`, bad flags) leaves `to` and its waiters alone.
    const int saved = errno;
    if (from != to && (flags & ~O_CLOEXEC) == 0 && sys::fcntl(from, F_GETFD, 0) >= 0) {
        green::cancel_wait(to);
        cancel_side_waits(to);
        forget_fd_info(to);
    }
    errno = saved;
    const int r = static_cast<int>(syscall(SYS_dup3, from, to, flags));
    if (r >= 0) copy_entry(from, r);
    return r;
}

int dup2(int from, int to) noexcept {
    if (from == to) return fcntl(from, F_GETFD) < 0 ? -1 : to;
    return dup3(from, to, 0);
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    const long arg = va_arg(ap, long);  // int or pointer: both fit a long on Linux ABIs
    va_end(ap);
    return tracked_fcntl(fd, cmd, arg);
}

// What code built with _FILE_OFFSET_BITS=64 calls for fcntl (glibc redirects it there).
int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    const long arg = va_arg(ap, long);
    va_end(ap);
    return tracked_fcntl(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    const int r = static_cast<int>(syscall(SYS_ioctl, fd, request, arg));
    if (r == 0 && request == FIONBIO && arg) set_user_nonblock(fd, *static_cast<int*>(arg) != 0);
    return r;
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
    const int r = static_cast<int>(syscall(SYS_setsockopt, fd, level, name, value, len));
    if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) && len >= sizeof(timeval)) {
        if (fd_info* info = table().at(fd)) {
            if (!(info->bits.load(std::memory_order_relaxed) & known)) describe(fd, *info);
            const timeval& tv = *static_cast<const timeval*>(value);
            // A negative length is accepted by the kernel as "do not wait at all" (with a
            // warning in its log): 1 ns, which is over before the first wait.
            const std::int64_t ns = tv.tv_sec < 0 ? 1 : timeval_ns(tv);
            (name == SO_RCVTIMEO ? info->recv_timeout_ns : info->send_timeout_ns).store(ns, std::memory_order_relaxed);
        }
    }
    return r;
}

[[noreturn]] void __chk_fail(void);

// _FORTIFY_SOURCE builds (Debian's libraries) call these checked variants when the buffer's
// size is known at compile time.
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
    if (n > buflen) __chk_fail();
    return read(fd, buf, n);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
    if (n > buflen) __chk_fail();
    return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* len) {
    if (n > buflen) __chk_fail();
    return recvfrom(fd, buf, n, flags, from, len);
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
    if (fdslen / sizeof(pollfd) < n) __chk_fail();
    return poll(fds, n, timeout);
}

}  // extern "C"

// ---- name resolution: glibc's resolver does its own I/O out of reach of the hooks, so the
// real functions run on another thread while the greenlet waits (gevent's thread resolver).
//
// These four are weak definitions. Dynamic linking does not care (the first definition found
// wins, weak or not), but in a fully static link libc.a's getaddrinfo.o comes in anyway (it
// also defines freeaddrinfo) with a strong getaddrinfo: a strong one here would be a duplicate
// definition; a weak one gives way, and a static binary resolves names in place.

namespace {

template <class F>
F real_function(std::atomic<F>& slot, const char* name) {
    F f = slot.load(std::memory_order_acquire);
    if (!f) {
        f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
        slot.store(f, std::memory_order_release);
    }
    return f;
}

bool resolve_cooperatively(const char* host) {
    if (!patched_for(green::monkey::patch::dns) || !may_wait_here()) return false;
    // A numeric address is parsed, not looked up: no need for another thread.
    unsigned char buf[sizeof(in6_addr)];
    return !host || (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1);
}

}  // namespace

extern "C" {

[[gnu::weak]] int getaddrinfo(const char* __restrict node, const char* __restrict service, const addrinfo* __restrict hints,
                addrinfo** __restrict result) {
    static std::atomic<int (*)(const char*, const char*, const addrinfo*, addrinfo**)> slot{nullptr};
    auto* real = real_function(slot, "getaddrinfo");
    if (!real) return EAI_SYSTEM;
    if (!resolve_cooperatively(node)) return real(node, service, hints, result);
    // Owned by the worker too: a caller killed while waiting (a green::timeout) leaves before
    // the result comes, and the result is then freed with the last reference.
    struct call {
        std::string node, service;
        bool has_node, has_service, has_hints;
        addrinfo hints{};
        int rc = EAI_SYSTEM;
        int error = 0;
        addrinfo* result = nullptr;
        ~call() {
            if (result) freeaddrinfo(result);
        }
    };
    auto c = std::make_shared<call>();
    c->has_node = node != nullptr;
    c->has_service = service != nullptr;
    c->has_hints = hints != nullptr;
    if (node) c->node = node;
    if (service) c->service = service;
    if (hints) {
        c->hints.ai_flags = hints->ai_flags;
        c->hints.ai_family = hints->ai_family;
        c->hints.ai_socktype = hints->ai_socktype;
        c->hints.ai_protocol = hints->ai_protocol;
    }
    offload([c, real] {
        c->rc = real(c->has_node ? c->node.c_str() : nullptr, c->has_service ? c->service.c_str() : nullptr,
                     c->has_hints ? &c->hints : nullptr, &c->result);
        c->error = errno;
    });
    *result = std::exchange(c->result, nullptr);
    errno = c->error;
    return c->rc;
}

[[gnu::weak]] int getnameinfo(const sockaddr* __restrict addr, socklen_t addrlen, char* __restrict host, socklen_t hostlen,
                char* __restrict serv, socklen_t servlen, int flags) {
    static std::atomic<int (*)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int)> slot{nullptr};
    auto* real = real_function(slot, "getnameinfo");
    if (!real) return EAI_SYSTEM;
    if (!patched_for(green::monkey::patch::dns) || !may_wait_here() || (flags & NI_NUMERICHOST))
        return real(addr, addrlen, host, hostlen, serv, servlen, flags);
    struct call {
        sockaddr_storage addr{};
        socklen_t addrlen = 0;
        std::string host, serv;
        int rc = EAI_SYSTEM;
        int error = 0;
    };
    auto c = std::make_shared<call>();
    std::memcpy(&c->addr, addr, std::min<std::size_t>(addrlen, sizeof c->addr));
    c->addrlen = addrlen;
    c->host.assign(hostlen, '\0');
    c->serv.assign(servlen, '\0');
    offload([c, real, hostlen, servlen, flags] {
        c->rc = real(reinterpret_cast<sockaddr*>(&c->addr), c->addrlen, hostlen ? c->host.data() : nullptr, hostlen,
                     servlen ? c->serv.data() : nullptr, servlen, flags);
        c->error = errno;
    });
    if (host && hostlen) std::memcpy(host, c->host.data(), hostlen);
    if (serv && servlen) std::memcpy(serv, c->serv.data(), servlen);
    errno = c->error;
    return c->rc;
}

[[gnu::weak]] int gethostbyname_r(const char* __restrict name, hostent* __restrict ret, char* __restrict buf, size_t buflen,
                    hostent** __restrict result, int* __restrict h_errnop) {
    static std::atomic<int (*)(const char*, hostent*, char*, size_t, hostent**, int*)> slot{nullptr};
    auto* real = real_function(slot, "gethostbyname_r");
    if (!real) return ENOSYS;
    if (!resolve_cooperatively(name)) return real(name, ret, buf, buflen, result, h_errnop);
    // The entry points into buf, which the caller owns: the worker writes into a private copy
    // and the pointers are moved over afterwards.
    struct call {
        std::string name;
        hostent entry{};
        std::vector<char> buffer;
        hostent* found = nullptr;
        int herr = 0;
        int rc = 0;
        int error = 0;
    };
    auto c = std::make_shared<call>();
    c->name = name;
    c->buffer.resize(buflen);
    offload([c, real] {
        c->rc = real(c->name.c_str(), &c->entry, c->buffer.data(), c->buffer.size(), &c->found, &c->herr);
        c->error = errno;
    });
    *h_errnop = c->herr;
    if (c->rc != 0 || !c->found) {
        *result = nullptr;
        if (c->rc != 0) errno = c->error;  // glibc sets errno too (ERANGE: the buffer is too small)
        return c->rc;
    }
    std::memcpy(buf, c->buffer.data(), buflen);
    const std::ptrdiff_t shift = buf - c->buffer.data();
    auto moved = [&](char* p) { return p ? p + shift : nullptr; };
    auto moved_list = [&](char** list) { return reinterpret_cast<char**>(moved(reinterpret_cast<char*>(list))); };
    *ret = c->entry;
    ret->h_name = moved(c->entry.h_name);
    ret->h_aliases = moved_list(c->entry.h_aliases);
    ret->h_addr_list = moved_list(c->entry.h_addr_list);
    for (char** p = ret->h_aliases; p && *p; ++p) *p = moved(*p);
    for (char** p = ret->h_addr_list; p && *p; ++p) *p = moved(*p);
    *result = ret;
    return 0;
}

[[gnu::weak]] hostent* gethostbyname(const char* name) {
    // As glibc's: one static result per thread (glibc's own is per process and not thread-safe).
    thread_local hostent entry;
    thread_local std::vector<char> buffer(8192);
    hostent* result = nullptr;
    int herr = 0;
    for (;;) {
        int rc = gethostbyname_r(name, &entry, buffer.data(), buffer.size(), &result, &herr);
        if (rc == ERANGE && buffer.size() < (1u << 20)) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        break;
    }
    h_errno = herr;
    return result;
}

}  // extern "C"
