// green/queue.hpp — gevent.queue: queue, lifo_queue, priority_queue, joinable_queue, channel.
//
// A queue hands items from greenlets that put() to greenlets that get(). get() on an empty
// queue waits; put() on a full one (a queue made with a maxsize) waits for room. put() on a
// queue with room never yields. Waiting getters, and waiting putters, are served in the order
// they came, after the greenlet that made it possible yields. A timed-out get() throws
// green::queue_empty and a timed-out put() green::queue_full, as do get_nowait() and
// put_nowait() (the same as a timeout of 0s) when they cannot go on at once.
//
//     green::queue<std::optional<int>> jobs(2);   // room for two; nullopt ends the iteration
//     auto consumer = green::spawn([&] {
//         for (int job : jobs) std::cout << "got " << job << '\n';
//     });
//     for (int i = 0; i < 5; ++i) jobs.put(i);       // waits while two are queued
//     jobs.put(std::nullopt);
//     consumer.join();
//
// Iterating a queue calls get() for each item. Python stops when the StopIteration class is
// dequeued; here a queue<std::optional<T>> stops at std::nullopt (and yields T), while a queue
// of anything else is iterated until the loop is left (break, a kill, an exception).
//
// A channel is a queue with no room at all (Go's unbuffered channel): put() returns once a
// getter has taken the item. docs/sync.md has the rules and the differences from gevent.
#pragma once

#include <green/detail/wait_list.hpp>
#include <green/error.hpp>
#include <green/hub.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace green {

// get() found no item: get_nowait() on an empty queue, or get(timeout) when the timeout passed
// first (Python's queue.Empty).
class queue_empty : public error {
public:
    using error::error;
};

// put() found no room: put_nowait() on a full queue, or put(timeout) when the timeout passed
// first (Python's queue.Full).
class queue_full : public error {
public:
    using error::error;
};

namespace detail {

// How each kind of queue stores its items.
template <class T>
class fifo_store {
public:
    std::size_t size() const noexcept { return items_.size(); }
    void push(T&& item) { items_.push_back(std::move(item)); }
    T pop() {
        T item = std::move(items_.front());
        items_.pop_front();
        return item;
    }
    const T& next() const { return items_.front(); }

private:
    std::deque<T> items_;
};

template <class T>
class lifo_store {
public:
    std::size_t size() const noexcept { return items_.size(); }
    void push(T&& item) { items_.push_back(std::move(item)); }
    T pop() {
        T item = std::move(items_.back());
        items_.pop_back();
        return item;
    }
    const T& next() const { return items_.back(); }

private:
    std::vector<T> items_;
};

// A binary heap with the smallest item (by Compare) on top, as Python's heapq.
template <class T, class Compare>
class heap_store {
public:
    std::size_t size() const noexcept { return items_.size(); }
    void push(T&& item) {
        items_.push_back(std::move(item));
        std::push_heap(items_.begin(), items_.end(), reversed());
    }
    T pop() {
        std::pop_heap(items_.begin(), items_.end(), reversed());
        T item = std::move(items_.back());
        items_.pop_back();
        return item;
    }
    const T& next() const { return items_.front(); }

private:
    // The std heap functions keep the largest on top; reversing the order keeps the smallest.
    auto reversed() {
        return [this](const T& a, const T& b) { return less_(b, a); };
    }
    std::vector<T> items_;
    Compare less_;
};

// A store that counts what was ever pushed into it (joinable_queue's unfinished tasks).
template <class T, class Store>
class counting_store : public Store {
public:
    void push(T&& item) {
        Store::push(std::move(item));
        ++pushed;
    }
    std::size_t pushed = 0;
};

// What iterating a queue of T yields, and which item ends the iteration.
template <class T>
struct iteration {
    using item = T;
    static bool ends(const T&) noexcept { return false; }
    static T&& take(T& x) noexcept { return std::move(x); }
};
template <class U>
struct iteration<std::optional<U>> {
    using item = U;
    static bool ends(const std::optional<U>& x) noexcept { return !x; }
    static U&& take(std::optional<U>& x) noexcept { return std::move(*x); }
};

// The iterator of a queue or a channel: each step is a get().
template <class Queue>
class get_iterator {
    using traits = iteration<typename Queue::value_type>;

public:
    using value_type = typename traits::item;
    using difference_type = std::ptrdiff_t;

    explicit get_iterator(Queue* q) : queue_(q) { fetch(); }
    value_type& operator*() const { return *current_; }
    value_type* operator->() const { return &*current_; }
    get_iterator& operator++() {
        fetch();
        return *this;
    }
    void operator++(int) { fetch(); }
    friend bool operator==(const get_iterator& it, std::default_sentinel_t) noexcept { return !it.current_; }

private:
    void fetch() {
        current_.reset();
        auto item = queue_->get();
        if (!traits::ends(item)) current_.emplace(traits::take(item));
    }
    Queue* queue_;
    mutable std::optional<value_type> current_;
};

// queue, lifo_queue, priority_queue and joinable_queue: gevent's Queue with its storage order
// as a parameter.
template <class T, class Store>
class basic_queue {
public:
    using value_type = T;

    // maxsize <= 0 (the default) means unbounded, as gevent's None or 0.
    explicit basic_queue(std::ptrdiff_t maxsize = 0)
        : maxsize_(maxsize > 0 ? static_cast<std::size_t>(maxsize) : 0), unlock_(this, &unlock_step) {}
    basic_queue(const basic_queue&) = delete;
    basic_queue& operator=(const basic_queue&) = delete;

    std::size_t qsize() const noexcept { return store_.size(); }
    bool empty() const noexcept { return store_.size() == 0; }
    bool full() const noexcept { return maxsize_ > 0 && store_.size() >= maxsize_; }
    // The bound; nullopt when unbounded.
    std::optional<std::size_t> maxsize() const noexcept {
        return maxsize_ > 0 ? std::optional<std::size_t>(maxsize_) : std::nullopt;
    }

    // Adds item, waiting for room while the queue is full: queue_full when the timeout passes
    // first. Never yields when there is room. In the hub it never waits: it makes room by
    // running the waiting getters at once, or throws (queue_full for put_nowait,
    // blocking_switch_error otherwise).
    void put(T item, std::optional<duration> timeout = std::nullopt) {
        check_timeout(timeout, "queue::put");
        if (!full()) {
            store_.push(std::move(item));
            if (!getters_.empty()) unlock_.schedule();
            return;
        }
        put_slow(item, timeout);
    }
    void put_nowait(T item) { put(std::move(item), duration()); }

    // Removes and returns the next item, waiting for one while the queue is empty: queue_empty
    // when the timeout passes first. In the hub it never waits: it lets a waiting putter put
    // its item at once, or throws (queue_empty for get_nowait, blocking_switch_error otherwise).
    T get(std::optional<duration> timeout = std::nullopt) {
        check_timeout(timeout, "queue::get");
        if (!empty()) {
            if (!putters_.empty()) unlock_.schedule();
            return store_.pop();
        }
        wait_for_item(timeout, "queue::get");
        return store_.pop();
    }
    T get_nowait() { return get(duration()); }

    // The next item, left in the queue; waits like get().
    T peek(std::optional<duration> timeout = std::nullopt)
        requires std::copy_constructible<T>
    {
        check_timeout(timeout, "queue::peek");
        if (empty()) wait_for_item(timeout, "queue::peek");
        return store_.next();
    }
    T peek_nowait()
        requires std::copy_constructible<T>
    {
        return peek(duration());
    }

    // get() after get(); see the header comment for when it ends.
    get_iterator<basic_queue> begin() { return get_iterator<basic_queue>(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

protected:
    Store store_;

private:
    struct putter : queued_waiter {
        T* item = nullptr;
        bool done = false;         // the item is in the queue
        std::exception_ptr error;  // storing it failed
    };

    void put_slow(T& item, std::optional<duration> timeout) {
        if (in_hub()) {
            // gevent: from the hub, make room by running the waiting getters now.
            while (full() && !getters_.empty()) wake_now(getters_.pop_front()->w);
            if (!full()) {
                store_.push(std::move(item));
                return;
            }
            if (!is_zero(timeout)) forbid_in_hub("queue::put");
        }
        if (is_zero(timeout)) throw queue_full("queue::put: the queue is full");
        putter p;
        p.item = &item;
        p.w.what = "queue::put";
        if (!getters_.empty()) unlock_.schedule();
        putters_.wait(p, timeout);
        if (p.error) std::rethrow_exception(p.error);
        if (!p.done) throw queue_full("queue::put: no room within the timeout");
    }

    // Returns once an item is in the queue for this greenlet to take.
    void wait_for_item(std::optional<duration> timeout, const char* what) {
        if (in_hub()) {
            // gevent: from the hub, let the waiting putters put their items now.
            while (!putters_.empty()) {
                store_from(static_cast<putter&>(*putters_.pop_front()));
                if (!empty()) return;
            }
            if (!is_zero(timeout)) forbid_in_hub(what);
        }
        if (is_zero(timeout)) throw queue_empty(std::string(what) + ": the queue is empty");
        queued_waiter getter;
        getter.w.what = what;
        if (!putters_.empty()) unlock_.schedule();
        if (!getters_.wait(getter, timeout)) throw queue_empty(std::string(what) + ": no item within the timeout");
        // Woken by unlock_step, which only wakes a getter while an item is there and lets
        // nothing run in between.
    }

    // In the hub: moves a waiting putter's item into the queue and resumes the putter now.
    void store_from(putter& p) {
        try {
            store_.push(std::move(*p.item));
            p.done = true;
        } catch (...) {
            p.error = std::current_exception();
        }
        wake_now(p.w);
    }

    // In the hub, after whoever made room or added an item has yielded (gevent's _unlock):
    // alternately lets the first putter in while there is room and wakes the first getter
    // while there is an item, until neither can go on.
    static void unlock_step(void* self, const bool& alive) {
        auto* q = static_cast<basic_queue*>(self);
        for (;;) {
            bool progress = false;
            if (!q->full() && !q->putters_.empty()) {
                progress = true;
                q->store_from(static_cast<putter&>(*q->putters_.pop_front()));
                if (!alive) return;
            }
            if (!q->empty() && !q->getters_.empty()) {
                progress = true;
                wake_now(q->getters_.pop_front()->w);
                if (!alive) return;
            }
            if (!progress) return;
        }
    }

    std::size_t maxsize_;
    wait_list getters_;
    wait_list putters_;
    notifier unlock_;
};

}  // namespace detail

// gevent's Queue: first in, first out.
template <class T>
class queue : public detail::basic_queue<T, detail::fifo_store<T>> {
public:
    using detail::basic_queue<T, detail::fifo_store<T>>::basic_queue;
};

// gevent's LifoQueue: last in, first out.
template <class T>
class lifo_queue : public detail::basic_queue<T, detail::lifo_store<T>> {
public:
    using detail::basic_queue<T, detail::lifo_store<T>>::basic_queue;
};

// gevent's PriorityQueue: the smallest item (by Compare) first, as Python's heapq. Items that
// compare equal come out in no particular order.
template <class T, class Compare = std::less<T>>
class priority_queue : public detail::basic_queue<T, detail::heap_store<T, Compare>> {
public:
    using detail::basic_queue<T, detail::heap_store<T, Compare>>::basic_queue;
};

// gevent's JoinableQueue: a queue that counts the items put and not yet marked done, so that a
// greenlet can wait until every item has been processed.
//
//     green::joinable_queue<int> work;
//     auto worker = green::spawn([&] {
//         for (int item : work) { std::cout << item << '\n'; work.task_done(); }
//     });
//     work.put(1);  work.put(2);
//     work.join();                 // both processed
//     worker.kill();
template <class T>
class joinable_queue : public detail::basic_queue<T, detail::counting_store<T, detail::fifo_store<T>>> {
    using base = detail::basic_queue<T, detail::counting_store<T, detail::fifo_store<T>>>;

public:
    explicit joinable_queue(std::ptrdiff_t maxsize = 0) : base(maxsize), all_done_(this) {}

    // Items put and not yet marked done.
    std::size_t unfinished_tasks() const noexcept { return this->store_.pushed - done_; }

    // Marks one item processed; green::error when more are marked than were put.
    void task_done() {
        if (unfinished_tasks() == 0) throw error("joinable_queue::task_done: called more times than items were put");
        ++done_;
        if (unfinished_tasks() == 0) all_done_.notify();
    }

    // Waits until every item put has been marked done: true, or false when the timeout
    // passes first. Those waiting are woken (after task_done's caller yields) even if an item
    // is put again meanwhile.
    bool join(std::optional<duration> timeout = std::nullopt) {
        return detail::wait_ready(all_done_, timeout, "joinable_queue::join");
    }

private:
    // What join() waits on: ready while no task is unfinished.
    struct all_done_source : detail::link_source {
        explicit all_done_source(const joinable_queue* q) : owner(q) {}
        bool ready() const noexcept override { return owner->unfinished_tasks() == 0; }
        void notify() { notify_links(); }
        const joinable_queue* owner;
    };
    std::size_t done_ = 0;
    all_done_source all_done_;
};

// gevent's Channel: no room at all. put() waits until a getter has taken the item; get()
// waits for a putter. balance() is the number of waiting putters minus waiting getters.
//
//     green::channel<std::string> ch;
//     green::spawn([&] { ch.put("ping"); std::cout << "taken\n"; });
//     std::cout << ch.get() << '\n';   // "ping", then "taken" once this greenlet waits
template <class T>
class channel {
public:
    using value_type = T;

    channel() : unlock_(this, &unlock_step) {}
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;

    // Waits until a getter has taken item: queue_full when the timeout passes first.
    // put_nowait (a timeout of 0s) succeeds only if a getter is already waiting; it yields
    // once, for the hand-over. In the hub it hands the item to a waiting getter now, or throws
    // (queue_full for put_nowait, blocking_switch_error otherwise).
    void put(T item, std::optional<duration> timeout = std::nullopt) {
        detail::check_timeout(timeout, "channel::put");
        if (detail::in_hub()) {
            if (!getters_.empty()) {
                // The getter takes the item from this frame before wake_now returns.
                putter p;
                p.item = &item;
                auto& g = static_cast<getter&>(*getters_.pop_front());
                g.from = &p;
                detail::wake_now(g.w);
                if (p.error) std::rethrow_exception(p.error);
                return;
            }
            if (!detail::is_zero(timeout)) detail::forbid_in_hub("channel::put");
        }
        const bool nowait = detail::is_zero(timeout);
        if (nowait && getters_.empty()) throw queue_full("channel::put: no getter is waiting");
        putter p;
        p.item = &item;
        p.w.what = "channel::put";
        if (!getters_.empty()) unlock_.schedule();
        // A put_nowait waits without a timeout: the hand-over is already queued, and
        // unlock_step wakes it (with done unset) if its getter left meanwhile.
        (nowait ? handoffs_ : putters_).wait(p, nowait ? std::nullopt : timeout);
        if (p.error) std::rethrow_exception(p.error);
        if (!p.done)
            throw queue_full(nowait ? "channel::put: no getter is waiting"
                                    : "channel::put: no getter took the item within the timeout");
    }
    void put_nowait(T item) { put(std::move(item), duration()); }

    // Waits for a putter and takes its item: queue_empty when the timeout passes first.
    // Takes the item of a putter that is already waiting at once, without yielding (the
    // putter resumes after this greenlet yields).
    T get(std::optional<duration> timeout = std::nullopt) {
        detail::check_timeout(timeout, "channel::get");
        if (getters_.empty()) {
            auto* p = static_cast<putter*>(putters_.pop_front());
            if (!p) p = static_cast<putter*>(handoffs_.pop_front());
            if (p) {
                detail::wake_soon(p->w);
                return take(*p);
            }
        }
        if (detail::is_zero(timeout)) throw queue_empty("channel::get: no putter is waiting");
        detail::forbid_in_hub("channel::get");
        getter g;
        g.w.what = "channel::get";
        if (!putters_.empty() || !handoffs_.empty()) unlock_.schedule();
        if (!getters_.wait(g, timeout)) throw queue_empty("channel::get: no item within the timeout");
        // Woken with g.from set to a putter that stays suspended until the item is taken.
        return take(*g.from);
    }
    T get_nowait() { return get(duration()); }

    std::ptrdiff_t balance() const noexcept {
        return static_cast<std::ptrdiff_t>(putters_.size() + handoffs_.size()) -
               static_cast<std::ptrdiff_t>(getters_.size());
    }
    // As gevent's Channel: never holds an item, so always empty and always full.
    std::size_t qsize() const noexcept { return 0; }
    bool empty() const noexcept { return true; }
    bool full() const noexcept { return true; }

    detail::get_iterator<channel> begin() { return detail::get_iterator<channel>(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    struct putter : detail::queued_waiter {
        T* item = nullptr;
        bool done = false;         // a getter took the item
        std::exception_ptr error;  // moving it out failed
    };
    struct getter : detail::queued_waiter {
        putter* from = nullptr;
    };

    // Moves the item out of a putter that has not run since it was chosen.
    static T take(putter& p) {
        try {
            T item(std::move(*p.item));
            p.done = true;
            return item;
        } catch (...) {
            p.error = std::current_exception();
            throw;
        }
    }

    // In the hub, after a putter or a getter arrived to find the other side waiting: pairs
    // them first come, first served. Each getter runs at once and takes its putter's item;
    // the putter resumes after it. put_nowait callers left without a getter are told so.
    static void unlock_step(void* self, const bool& alive) {
        auto* ch = static_cast<channel*>(self);
        while (!ch->getters_.empty()) {
            auto* p = static_cast<putter*>(ch->putters_.pop_front());
            if (!p) p = static_cast<putter*>(ch->handoffs_.pop_front());
            if (!p) break;
            auto& g = static_cast<getter&>(*ch->getters_.pop_front());
            g.from = p;
            detail::wake_soon(p->w);
            detail::wake_now(g.w);
            if (!alive) return;
        }
        while (detail::queued_waiter* p = ch->handoffs_.pop_front()) {
            detail::wake_now(p->w);
            if (!alive) return;
        }
    }

    detail::wait_list getters_;
    detail::wait_list putters_;
    detail::wait_list handoffs_;  // put_nowait callers
    detail::notifier unlock_;
};

}  // namespace green
