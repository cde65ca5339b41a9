// The event loop's mechanism: the run queue, the timer heap, the epoll poller and the eventfd
// that other threads use to wake the loop. Policy (what runs when, what waiting means) lives in
// the hub; nothing here knows about greenlets.
#pragma once

#include <green/detail/hub_core.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <sys/epoll.h>
#include <vector>

namespace green::detail {

// Monotonic nanoseconds (steady_clock), and a cheap coarse reading for the fairness check.
std::int64_t now_ns() noexcept;
std::int64_t coarse_now_ns() noexcept;

// A 4-ary min-heap of timers ordered by (deadline, sequence). Each entry carries its own copy
// of the ordering key (libev's EV_HEAP_CACHE_AT): the nodes live on sleeping greenlets' stacks
// and in tasks, all over memory, and sifting through pointers to them missed the cache at every
// level. For the same reason a node's position is not kept in the node: it holds a slot in
// position_, a dense array the sifts update instead (with 100k timers pending, writing each
// moved node's index cost a cache miss per level of every pop).
class timer_heap {
public:
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    timer_node* top() const noexcept { return heap_.empty() ? nullptr : heap_.front().node; }
    void push(timer_node* t);
    void remove(timer_node* t) noexcept;
    // Removes and returns the first timer if it is due at `now` and was armed before sequence
    // number `armed_before`; null otherwise. Reads only the heap, and prefetches the next
    // timer, which the caller touches next while this one's work hides the memory latency.
    timer_node* pop_due(std::int64_t now, std::uint64_t armed_before) noexcept;
    std::size_t ref_count() const noexcept { return refs_; }

private:
    struct entry {
        std::int64_t deadline;
        std::uint64_t sequence;
        timer_node* node;
        std::uint32_t slot;
        bool ref;
    };
    static bool before(const entry& a, const entry& b) noexcept {
        return a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence);
    }
    void place(std::size_t i, const entry& e) noexcept {
        heap_[i] = e;
        position_[e.slot] = static_cast<std::uint32_t>(i);
    }
    void sift_up(std::size_t i) noexcept;
    void sift_down(std::size_t i) noexcept;
    void erase_at(std::size_t i) noexcept;
    std::vector<entry> heap_;
    std::vector<std::uint32_t> position_;    // slot -> index in heap_
    std::vector<std::uint32_t> free_slots_;  // slots of timers no longer armed
    std::size_t refs_ = 0;
};

// epoll, plus an eventfd registered in it for cross-thread wake-ups.
class poller {
public:
    poller();
    ~poller();
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;

    // Registers fd for edge-triggered read and write readiness (once per fd); false with errno
    // set when it cannot be polled (EPERM: a regular file).
    bool add(int fd) noexcept;
    void remove(int fd) noexcept;

    // Waits up to timeout_ns (-1: forever, 0: poll) and returns the number of events in
    // events(). The wake-up eventfd shows up as wake_token().
    int wait(std::int64_t timeout_ns);
    const epoll_event* events() const noexcept { return events_; }
    static constexpr std::uint64_t wake_token = ~std::uint64_t{0};

    // Thread-safe: makes a wait() return.
    void wake() noexcept;
    // Consumes the wake-up (call when wake_token shows up).
    void drain_wake() noexcept;

private:
    int epoll_fd_ = -1;
    int event_fd_ = -1;
    epoll_event events_[256];
};

}  // namespace green::detail
