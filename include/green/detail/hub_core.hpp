// The hub's building blocks, shared by the primitives (event, lock, queue, task...) — not part
// of the API.
//
// Everything that blocks does the same three things, as in gevent:
//   1. register how it will be woken (a waiter on a source, a timer, an fd);
//   2. switch to the hub (block());
//   3. unregister on the way out, whether it was woken, timed out, or had an exception thrown
//      in (a kill, a timeout) — RAII, so primitives stay consistent.
// Wake-ups only ever come from the hub: from a timer, from I/O readiness, or from a callback
// in the hub's run queue (wake_soon schedules one; wake_now is for code already in the hub).
// Waiters, callbacks, timers and links are intrusive nodes, usually on the waiting greenlet's
// stack (stacks never move), so waiting allocates nothing.
#pragma once

#include <green/detail/switch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

namespace green {

// A length of time. Any std::chrono::duration converts, including floating ones (0.5s), so
// green::sleep(0.5s) and green::sleep(500ms) both work.
struct duration {
    std::chrono::nanoseconds ns{0};
    constexpr duration() = default;
    template <class Rep, class Period>
    constexpr duration(std::chrono::duration<Rep, Period> d)
        : ns(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
    constexpr double seconds() const noexcept { return static_cast<double>(ns.count()) / 1e9; }
};

namespace detail {

// A node of an intrusive, circular, doubly linked list. Unlinks itself when destroyed.
struct list_node {
    list_node* prev = nullptr;
    list_node* next = nullptr;

    list_node() = default;
    list_node(const list_node&) = delete;
    list_node& operator=(const list_node&) = delete;
    ~list_node() { unlink(); }

    bool linked() const noexcept { return next != nullptr; }
    void unlink() noexcept {
        if (next) {
            prev->next = next;
            next->prev = prev;
            prev = next = nullptr;
        }
    }
};

class list_head {
public:
    list_head() noexcept { head_.prev = head_.next = &head_; }
    list_head(const list_head&) = delete;
    list_head& operator=(const list_head&) = delete;
    ~list_head() {
        while (!empty()) head_.next->unlink();
        head_.prev = head_.next = nullptr;
    }

    bool empty() const noexcept { return head_.next == &head_; }
    list_node* front() const noexcept { return empty() ? nullptr : head_.next; }
    void push_back(list_node& n) noexcept {
        n.unlink();
        n.prev = head_.prev;
        n.next = &head_;
        head_.prev->next = &n;
        head_.prev = &n;
    }
    list_node* pop_front() noexcept {
        list_node* n = front();
        if (n) n->unlink();
        return n;
    }
    // Moves every node of `other` to the end of this list.
    void splice_back(list_head& other) noexcept {
        if (other.empty()) return;
        list_node* first = other.head_.next;
        list_node* last = other.head_.prev;
        first->prev = head_.prev;
        head_.prev->next = first;
        last->next = &head_;
        head_.prev = last;
        other.head_.prev = other.head_.next = &other.head_;
    }
    std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const list_node* p = head_.next; p != &head_; p = p->next) ++n;
        return n;
    }
    template <class F>
    void for_each(F&& f) const {
        for (list_node* p = head_.next; p != &head_; p = p->next) f(p);
    }

private:
    list_node head_;
};

// An entry of the hub's run queue (FIFO). With `run` unset it resumes `target`. `discard`, if
// set, releases what the callback owns when the hub drops it unrun (its thread is exiting).
struct callback : list_node {
    void (*run)(callback&) = nullptr;
    greenlet_core* target = nullptr;
    void (*discard)(callback&) = nullptr;
};

// An entry of the hub's timer heap.
struct timer_node {
    std::int64_t deadline = 0;  // steady_clock nanoseconds
    std::uint64_t sequence = 0;
    std::uint32_t slot = unarmed;  // the heap's handle for it (timer_heap::position_)
    bool ref = true;  // keeps the loop alive (gevent's ref=True)
    void (*fire)(timer_node&) = nullptr;

    timer_node() = default;
    timer_node(const timer_node&) = delete;
    timer_node& operator=(const timer_node&) = delete;
    ~timer_node() {
        if (armed()) disarm_slow();
    }
    bool armed() const noexcept { return slot != unarmed; }
    static constexpr std::uint32_t unarmed = 0xffff'ffff;

private:
    void disarm_slow() noexcept;
};

enum class wake_reason : std::uint8_t { waiting, woken, timed_out, cancelled };

struct waiter;

// A list node that knows which waiter it belongs to.
struct waiter_node : list_node {
    waiter* owner = nullptr;
};

// A greenlet blocked in the hub. Lives on the blocked greenlet's stack for the duration of
// block().
struct waiter {
    greenlet_core* greenlet = nullptr;
    wake_reason reason = wake_reason::waiting;
    int error = 0;          // for cancelled: the errno to report (EBADF when its fd was closed)
    const char* what = "";  // what it waits in, for loop_exit's message
    callback resume;        // queued by wake_soon
    waiter_node blocked;    // in the hub's list of blocked greenlets

    waiter() { blocked.owner = this; }
    waiter(const waiter&) = delete;
    waiter& operator=(const waiter&) = delete;
};

// Blocks the current greenlet until woken (true) or until the timeout (false; none: no
// timeout). Raises blocking_switch_error when called in the hub, loop_exit when nothing could
// ever wake it, and whatever is thrown into the greenlet meanwhile (a kill, a timeout).
bool block(waiter& w, std::optional<duration> timeout = std::nullopt, bool timeout_keeps_loop_alive = true);
// Resumes w right now, from code running in the hub; no-op unless w is still waiting.
void wake_now(waiter& w, wake_reason reason = wake_reason::woken);
// Marks w woken and has the hub resume it soon, after the caller yields; no-op unless waiting.
void wake_soon(waiter& w, wake_reason reason = wake_reason::woken);

// Appends to this thread's run queue; the hub runs it at its next pass. Cancelled by unlinking.
void schedule(callback& cb);
// Arms t to fire at now + after (fresh clock reading), in the hub's timer phase.
void arm(timer_node& t, duration after);
void disarm(timer_node& t) noexcept;
// True when the running greenlet is this thread's hub.
bool in_hub() noexcept;
// Throws blocking_switch_error if the running greenlet is the hub; `what` names the call.
void forbid_in_hub(const char* what);
[[noreturn]] void throw_negative_timeout(const char* what);
inline void check_timeout(std::optional<duration> t, const char* what) {
    if (t && t->ns.count() < 0) throw_negative_timeout(what);
}

// A registration on something that becomes ready (a task, an event, an async_result): its
// fire function runs in the hub, in registration order, once the source is ready (gevent's
// rawlink). A link added to a source that is already ready fires at the next turn of the hub.
struct link : list_node {
    void (*fire)(link&) = nullptr;
};

// Something that can be linked to. Keeps its links and the callback that fires them.
class link_source {
public:
    link_source() {
        notify_.run = &fire_links;
        notify_.discard = [](callback& cb) { static_cast<notify_callback&>(cb).source->release_retained(); };
        notify_.source = this;
    }
    link_source(const link_source&) = delete;
    link_source& operator=(const link_source&) = delete;
    virtual ~link_source() {
        if (firing_alive_) *firing_alive_ = false;
    }

    virtual bool ready() const noexcept = 0;
    void rawlink(link& l);
    bool has_links() const noexcept { return !links_.empty(); }
    // Ready, and its links are queued to fire at the hub's next pass.
    bool notifying() const noexcept { return notify_.linked(); }

protected:
    // Call when the source becomes ready: its links fire at the hub's next pass.
    void notify_links();
    // Sources that own themselves (refcounted tasks, async_results) stay alive while their
    // links are being fired: these are called around it.
    virtual void retain() noexcept {}
    virtual void release_retained() noexcept {}

private:
    struct notify_callback : callback {
        link_source* source = nullptr;
    };
    static void fire_links(callback& cb);
    list_head links_;
    notify_callback notify_;
    bool* firing_alive_ = nullptr;  // while fire_links runs; cleared if the source is destroyed
};

// A waiter woken through a link: what join(), event::wait() and async_result::get() use.
struct link_waiter : link {
    waiter w;
    link_waiter() {
        fire = [](link& l) { wake_now(static_cast<link_waiter&>(l).w); };
    }
};

// Waits for `source` to be ready: true when it is, false on timeout.
bool wait_ready(link_source& source, std::optional<duration> timeout, const char* what);

}  // namespace detail
}  // namespace green
