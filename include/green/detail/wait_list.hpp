// What the synchronization primitives (lock.hpp, queue.hpp, pool.hpp) are built from — not part
// of the API.
//
// A primitive keeps the greenlets blocked in it in wait_lists, in the order they arrived, and
// wakes them from a notifier: a callback in the hub's run queue, so that release() or put()
// never switches and the woken greenlet runs after the caller yields (gevent's
// _check_and_notify and _schedule_unlock). The notifier wakes one waiter at a time with
// wake_now: the waiter runs at once, takes what it waited for itself (a unit of the counter, an
// item) and runs on until it waits again; then the notifier looks at the primitive again.
//
// That is gevent's model, and it is what keeps the primitives consistent when a waiter is
// killed or times out: nothing is ever reserved for a greenlet that has not run yet. A waiter
// that is thrown out of block() only leaves its place in the list (its entry unlinks itself as
// the stack unwinds); the unit or the item it might have had stays in the primitive for the
// next waiter.
#pragma once

#include <green/detail/hub_core.hpp>

#include <cstddef>
#include <optional>

namespace green::detail {

// A greenlet blocked in a primitive. Lives on that greenlet's stack, and leaves its list when
// destroyed (however the wait ends).
struct queued_waiter : list_node {
    waiter w;
};

// The greenlets blocked in one primitive, first come first served.
class wait_list {
public:
    bool empty() const noexcept { return list_.empty(); }
    std::size_t size() const noexcept { return list_.size(); }

    // Removes and returns the longest-waiting entry; null when there is none.
    queued_waiter* pop_front() noexcept { return static_cast<queued_waiter*>(list_.pop_front()); }

    // Blocks the running greenlet at the end of the list until a notifier wakes it (true) or
    // the timeout passes (false). The entry is out of the list when this returns or throws.
    bool wait(queued_waiter& entry, std::optional<duration> timeout) {
        list_.push_back(entry);
        const bool woken = block(entry.w, timeout);
        entry.unlink();
        return woken;
    }

private:
    list_head list_;
};

// A primitive's "wake whoever can go on now" step, run from the hub's run queue after the caller
// of schedule() yields; scheduled at most once at a time.
//
// The step wakes waiters with wake_now, and each woken greenlet may destroy the primitive (it
// owned it, say) before control comes back. So the step receives `alive`, a flag on the hub's
// stack that the notifier's destructor clears, and must return without touching the primitive
// once it is false.
class notifier : public callback {
public:
    using step_function = void (*)(void* owner, const bool& alive);

    notifier(void* owner, step_function step) noexcept : owner_(owner), step_(step) { run = &run_step; }
    ~notifier() {
        if (alive_) *alive_ = false;
    }

    // Queues the step unless it is already queued. A step that is running may be queued again:
    // it may already have looked at what changed meanwhile, and then the next run finds
    // nothing to do.
    void schedule() {
        if (!linked()) detail::schedule(*this);
    }

private:
    static void run_step(callback& cb);
    void* owner_;
    step_function step_;
    bool* alive_ = nullptr;  // while the step runs
};

inline bool is_zero(const std::optional<duration>& timeout) noexcept {
    return timeout && timeout->ns.count() == 0;
}

}  // namespace green::detail
