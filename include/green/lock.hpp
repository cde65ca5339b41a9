// green/lock.hpp — gevent.lock: semaphore, bounded_semaphore, dummy_semaphore, lock, rlock.
//
// A semaphore counts free units: acquire() takes one, waiting while there is none; release()
// gives one back. Waiters are woken first come, first served — but only after the releasing
// greenlet yields: release() never blocks and never switches. Every type here is a standard
// Lockable, so std::lock_guard and std::unique_lock hold it, and a kill or a timeout thrown
// into the holder releases it as the stack unwinds:
//
//     green::semaphore slots(2);                  // at most two downloads at once
//     auto fetch = [&](std::string url) {
//         std::lock_guard hold(slots);            // waits for a slot
//         green::sleep(100ms);                    // ... download ...
//         std::cout << url << " done\n";
//     };
//     green::joinall({green::spawn(fetch, "a"), green::spawn(fetch, "b"), green::spawn(fetch, "c")});
//
//     green::lock mutex;
//     if (mutex.acquire(50ms)) {                  // false when the timeout passes first
//         // ...
//         mutex.release();
//     }
//
// acquire(0s) never waits (gevent's blocking=False). An rlock belongs to the greenlet that
// acquired it, which may acquire it again; only that greenlet may release it. docs/sync.md has
// the rules and the differences from gevent.
#pragma once

#include <green/detail/wait_list.hpp>
#include <green/greenlet.hpp>
#include <green/hub.hpp>

#include <chrono>
#include <cstddef>
#include <optional>

namespace green {

// gevent's Semaphore(value=1). Over-releasing is allowed (it adds a unit); use
// bounded_semaphore to have it caught.
class semaphore : public detail::link_source {
public:
    // green::error if value is negative.
    explicit semaphore(int value = 1);
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    // Takes a unit, waiting for one if needed: true, or false when the timeout passes first.
    // acquire(0s) never waits. A unit released while others wait may be taken by a greenlet
    // that arrives before the woken waiter runs (as in gevent); the waiters themselves are
    // served in the order they came.
    bool acquire(std::optional<duration> timeout = std::nullopt) { return acquire_as(timeout, "semaphore::acquire"); }

    // Gives a unit back. Never blocks and never switches: the first waiter is woken after the
    // caller yields. Allowed in the hub (a callback, a rawlink).
    void release();

    // Waits until a unit is free without taking it; returns the number free (0 on timeout).
    int wait(std::optional<duration> timeout = std::nullopt);

    int counter() const noexcept { return counter_; }
    // No unit is free.
    bool locked() const noexcept { return counter_ <= 0; }
    bool ready() const noexcept override { return counter_ > 0; }

    // Lockable and TimedLockable, for std::lock_guard, std::unique_lock, std::scoped_lock.
    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(std::chrono::seconds(0)); }
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return acquire(d < d.zero() ? duration() : duration(d));
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return try_lock_for(t - Clock::now());
    }

    // For iwait: ready while a unit is free. It does not take the unit: acquire(0s) does.
    waitable as_waitable() const { return waitable(const_cast<semaphore*>(this), {}); }

protected:
    // A semaphore whose release() throws green::error(over_release) when the counter is
    // already at `value`.
    semaphore(int value, const char* over_release);

private:
    friend class pool;  // its slots wait under their own name, for loop_exit's message
    // acquire(), naming the wait `what` in errors and in loop_exit's message.
    bool acquire_as(std::optional<duration> timeout, const char* what) {
        detail::check_timeout(timeout, what);
        if (counter_ > 0) {
            --counter_;
            return true;
        }
        if (detail::is_zero(timeout)) return false;
        return acquire_slow(timeout, what);
    }
    bool acquire_slow(std::optional<duration> timeout, const char* what);
    static void wake_waiters(void* self, const bool& alive);

    int counter_;
    const int bound_;                  // the initial value, for over-release checks
    const char* const over_release_;  // null: over-release allowed
    detail::wait_list waiters_;
    detail::notifier notifier_;
};

// gevent's BoundedSemaphore: releasing more than was acquired throws green::error("Semaphore
// released too many times").
class bounded_semaphore : public semaphore {
public:
    explicit bounded_semaphore(int value = 1) : semaphore(value, "Semaphore released too many times") {}
};

// A mutex: a semaphore of one that refuses to be released while unlocked (green::error).
// gevent.lock has no Lock class; this is what gevent.monkey makes threading.Lock
// (gevent.thread.LockType, a BoundedSemaphore(1)). Spell it green::lock. The class itself is
// lock_type, as Python's threading.Lock names _thread.LockType, because a class called `lock`
// could not have the lock() member that std::lock_guard calls.
class lock_type : public semaphore {
public:
    lock_type() : semaphore(1, "lock::release: the lock is not locked") {}
};
using lock = lock_type;

// gevent's DummySemaphore: the same interface, never blocks (an unbounded pool uses one).
class dummy_semaphore {
public:
    explicit dummy_semaphore(int = 1) noexcept {}
    bool acquire(std::optional<duration> timeout = std::nullopt) {
        detail::check_timeout(timeout, "dummy_semaphore::acquire");
        return true;
    }
    void release() noexcept {}
    int wait(std::optional<duration> timeout = std::nullopt) {
        detail::check_timeout(timeout, "dummy_semaphore::wait");
        return 1;
    }
    bool locked() const noexcept { return false; }
    bool ready() const noexcept { return true; }
    void lock() noexcept {}
    void unlock() noexcept {}
    bool try_lock() noexcept { return true; }
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>&) noexcept {
        return true;
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>&) noexcept {
        return true;
    }
};

// gevent's RLock: a mutex owned by the greenlet that acquired it, which may acquire it again
// (each acquire needs its release). Releasing it from another greenlet throws green::error.
class rlock {
public:
    rlock() = default;
    rlock(const rlock&) = delete;
    rlock& operator=(const rlock&) = delete;

    // True at once if the current greenlet holds it; otherwise as semaphore::acquire.
    bool acquire(std::optional<duration> timeout = std::nullopt);
    void release();

    bool locked() const noexcept { return count_ > 0; }
    // The current greenlet holds it.
    bool owned() const;

    void lock() { acquire(); }
    void unlock() { release(); }
    bool try_lock() { return acquire(std::chrono::seconds(0)); }
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return acquire(d < d.zero() ? duration() : duration(d));
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return try_lock_for(t - Clock::now());
    }

private:
    semaphore block_{1};
    std::optional<green::greenlet> owner_;  // held while locked, as Python holds _owner
    std::size_t count_ = 0;
};

}  // namespace green
