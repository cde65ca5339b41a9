// The loop's mechanism: timer heap, epoll and eventfd.
#include "loop.hpp"
#include "sys.hpp"

#include <green/error.hpp>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <system_error>
#include <sys/eventfd.h>
#include <unistd.h>

namespace green::detail {

std::int64_t now_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t coarse_now_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// ---- timer heap -------------------------------------------------------------------------

void timer_heap::push(timer_node* t) {
    if (free_slots_.empty()) {
        t->slot = static_cast<std::uint32_t>(position_.size());
        position_.push_back(0);
        free_slots_.reserve(position_.capacity());  // remove() must not allocate
    } else {
        t->slot = free_slots_.back();
        free_slots_.pop_back();
    }
    heap_.push_back(entry{t->deadline, t->sequence, t, t->slot, t->ref});
    position_[t->slot] = static_cast<std::uint32_t>(heap_.size() - 1);
    if (t->ref) ++refs_;
    sift_up(heap_.size() - 1);
}

void timer_heap::remove(timer_node* t) noexcept {
    if (!t->armed() || t->slot >= position_.size()) return;
    const std::size_t i = position_[t->slot];
    if (i >= heap_.size() || heap_[i].node != t) return;
    erase_at(i);
}

timer_node* timer_heap::pop_due(std::int64_t now, std::uint64_t armed_before) noexcept {
    if (heap_.empty()) return nullptr;
    const entry& first = heap_.front();
    if (first.deadline > now || first.sequence >= armed_before) return nullptr;
    timer_node* t = first.node;
    erase_at(0);
    if (!heap_.empty()) __builtin_prefetch(heap_.front().node, 1);
    return t;
}

void timer_heap::erase_at(std::size_t i) noexcept {
    const entry gone = heap_[i];
    if (gone.ref) --refs_;
    free_slots_.push_back(gone.slot);
    gone.node->slot = timer_node::unarmed;
    entry last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    place(i, last);
    if (i > 0 && before(last, heap_[(i - 1) / 4]))
        sift_up(i);
    else
        sift_down(i);
}

void timer_heap::sift_up(std::size_t i) noexcept {
    entry e = heap_[i];
    while (i > 0) {
        std::size_t parent = (i - 1) / 4;
        if (!before(e, heap_[parent])) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, e);
}

void timer_heap::sift_down(std::size_t i) noexcept {
    entry e = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
        std::size_t first = 4 * i + 1;
        if (first >= n) break;
        std::size_t best = first;
        for (std::size_t c = first + 1; c < first + 4 && c < n; ++c)
            if (before(heap_[c], heap_[best])) best = c;
        if (!before(heap_[best], e)) break;
        place(i, heap_[best]);
        i = best;
    }
    place(i, e);
}

// ---- poller -----------------------------------------------------------------------------

poller::poller() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "green: epoll_create1");
    event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) {
        int e = errno;
        sys::close(epoll_fd_);
        throw std::system_error(e, std::generic_category(), "green: eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_token;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
}

poller::~poller() {
    sys::close(event_fd_);
    sys::close(epoll_fd_);
}

bool poller::add(int fd) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) return true;
    if (errno == EEXIST) return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
    return false;
}

void poller::remove(int fd) noexcept { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

int poller::wait(std::int64_t timeout_ns) {
    // epoll_pwait2 takes nanoseconds; where it is missing (Linux < 5.11, valgrind) epoll_wait
    // does, with the timeout rounded up to whole milliseconds so that a timer is never early.
    static std::atomic<bool> have_pwait2{true};
    int n = -1;
    if (timeout_ns < 0) {
        n = sys::epoll_pwait(epoll_fd_, events_, 256, -1, nullptr);
    } else if (have_pwait2.load(std::memory_order_relaxed)) {
        timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
        n = epoll_pwait2(epoll_fd_, events_, 256, &ts, nullptr);
        if (n < 0 && errno == ENOSYS) have_pwait2.store(false, std::memory_order_relaxed);
    }
    if (n < 0 && timeout_ns >= 0 && !have_pwait2.load(std::memory_order_relaxed)) {
        const std::int64_t ms = (timeout_ns + 999'999) / 1'000'000;
        n = sys::epoll_pwait(epoll_fd_, events_, 256, ms > 2'000'000'000 ? 2'000'000'000 : static_cast<int>(ms), nullptr);
    }
    if (n < 0) {
        if (errno == EINTR) return 0;
        throw std::system_error(errno, std::generic_category(), "green: epoll_wait");
    }
    return n;
}

void poller::wake() noexcept {
    std::uint64_t one = 1;
    ssize_t ignored = sys::write(event_fd_, &one, sizeof one);
    (void)ignored;
}

void poller::drain_wake() noexcept {
    std::uint64_t value;
    ssize_t ignored = sys::read(event_fd_, &value, sizeof value);
    (void)ignored;
}

}  // namespace green::detail
