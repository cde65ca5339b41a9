// Semaphores and the re-entrant lock (green/lock.hpp).
#include <green/error.hpp>
#include <green/lock.hpp>

#include <string>

namespace green {

semaphore::semaphore(int value) : semaphore(value, nullptr) {}

semaphore::semaphore(int value, const char* over_release)
    : counter_(value), bound_(value), over_release_(over_release), notifier_(this, &wake_waiters) {
    if (value < 0) throw error("semaphore: the initial value must be >= 0, not " + std::to_string(value));
}

bool semaphore::acquire_slow(std::optional<duration> timeout, const char* what) {
    detail::queued_waiter entry;
    entry.w.what = what;
    if (!waiters_.wait(entry, timeout)) return false;
    // Woken by wake_waiters, which only wakes while a unit is free and lets nothing run in
    // between: the unit is there.
    --counter_;
    return true;
}

int semaphore::wait(std::optional<duration> timeout) {
    detail::check_timeout(timeout, "semaphore::wait");
    if (counter_ > 0 || detail::is_zero(timeout)) return counter_;
    detail::queued_waiter entry;
    entry.w.what = "semaphore::wait";
    waiters_.wait(entry, timeout);
    return counter_;
}

void semaphore::release() {
    if (over_release_ && counter_ >= bound_) throw error(over_release_);
    ++counter_;
    if (!waiters_.empty()) notifier_.schedule();
    notify_links();  // iwait
}

// In the hub: wakes waiters in order while a unit is free. Each runs at once: an acquirer
// takes a unit, a wait()er does not, so the next one is considered too (gevent's
// _notify_links with notify_all=False).
void semaphore::wake_waiters(void* self, const bool& alive) {
    auto* s = static_cast<semaphore*>(self);
    while (s->counter_ > 0) {
        detail::queued_waiter* next = s->waiters_.pop_front();
        if (!next) return;
        detail::wake_now(next->w);
        if (!alive) return;
    }
}

bool rlock::owned() const { return count_ > 0 && *owner_ == getcurrent(); }

bool rlock::acquire(std::optional<duration> timeout) {
    detail::check_timeout(timeout, "rlock::acquire");
    green::greenlet me = getcurrent();
    if (count_ > 0 && *owner_ == me) {
        ++count_;
        return true;
    }
    if (!block_.acquire(timeout)) return false;
    owner_ = std::move(me);
    count_ = 1;
    return true;
}

void rlock::release() {
    if (count_ == 0 || *owner_ != getcurrent())
        throw error(count_ == 0 ? "rlock::release: the lock is not locked"
                                : "rlock::release: the lock belongs to another greenlet");
    if (--count_ == 0) {
        owner_.reset();
        block_.release();
    }
}

}  // namespace green
