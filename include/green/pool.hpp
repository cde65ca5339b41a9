// green/pool.hpp — gevent.pool: group and pool.
//
// A group keeps track of tasks: the ones spawned through it, or added to it, leave it as they
// finish. join() waits until it is empty; kill() kills what is in it. A pool is a group with a
// fixed number of slots: spawn() waits for a free slot, so at most that many members run at
// once.
//
//     green::pool workers(2);                                // two at a time
//     for (int i = 0; i < 4; ++i)
//         workers.spawn([i] { green::sleep(100ms); std::cout << i << '\n'; });
//     workers.join();                                        // about 200 ms, not 100 or 400
//
//     auto square = [](int x) { green::sleep(std::chrono::milliseconds(10 * x)); return x * x; };
//     std::vector<int> in_order = workers.map(square, std::vector{5, 1, 2});       // 25 1 4
//     for (int r : workers.imap_unordered(square, std::vector{5, 1, 2})) std::cout << r << ' ';  // 1 4 25
//
// map() and imap_unordered() never run more than the pool's size at once; they wait for, or
// kill, every task they started before they return, so a function that captures by reference
// never outlives the call. A group or pool that is destroyed kills its members and waits for
// them. docs/sync.md has the rules and the differences from gevent.
#pragma once

#include <green/event.hpp>
#include <green/hub.hpp>
#include <green/lock.hpp>
#include <green/queue.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace green {

// A pool's add() found no free slot in time (gevent's PoolFull, a queue.Full).
class pool_full : public queue_full {
public:
    using queue_full::queue_full;
};

struct group_join_options {
    std::optional<duration> timeout;  // give up then: join() returns false
    bool raise_error = false;          // rethrow the failure of a task that was in the group
};

namespace detail {
// Kills the tasks not finished yet and waits for them; errors (even a kill of the caller
// arriving meanwhile) are dropped: this runs while an exception is already on its way.
void kill_unfinished(const std::vector<any_task>& tasks) noexcept;
}  // namespace detail

template <class R>
class imap_unordered_range;

// gevent's Group.
class group {
public:
    group();
    group(const group&) = delete;
    group& operator=(const group&) = delete;
    // Kills the members still running and waits for them (gevent's Group just lets go of them).
    virtual ~group();

    // Tracks t until it finishes (a task already finished leaves at the hub's next turn).
    // Adding a member again does nothing. A pool first waits for a free slot: pool_full when
    // the timeout passes first (0s: no waiting).
    void add(const any_task& t, std::optional<duration> timeout = std::nullopt);
    // Stops tracking t (a pool frees its slot); t keeps running.
    void discard(const any_task& t);
    // add(t), then t.start().
    void start(const any_task& t) {
        add(t);
        t.start();
    }
    // Spawns fn(args...) as a member. A pool waits for a free slot first.
    template <class F, class... A>
    auto spawn(F&& fn, A&&... args) {
        using R = detail::spawn_result_t<F, A...>;
        acquire_slot(std::nullopt);
        std::optional<task<R>> t;
        try {
            t.emplace(detail::make_task(std::forward<F>(fn), std::forward<A>(args)...));
            add_member(*t);
        } catch (...) {
            release_slot();
            throw;
        }
        t->start();
        return std::move(*t);
    }

    // Waits until the group has been empty at least once since the call: true, or false when
    // the timeout passes first. With raise_error, rethrows the failure of one of the tasks
    // that were members when it was called.
    bool join(std::optional<duration> timeout = std::nullopt) { return join(group_join_options{timeout}); }
    bool join(const group_join_options& options);

    // Kills every member (greenlet_exit, or `exception`) and, with block, waits until the
    // group is empty — killing what joins meanwhile too. Its timeout is not an error: kill
    // just returns.
    void kill(kill_options options = {});
    void kill(std::exception_ptr exception, kill_options options = {});
    template <class E>
        requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr> && !std::is_same_v<std::decay_t<E>, kill_options>)
    void kill(E&& exception, kill_options options = {}) {
        kill(std::make_exception_ptr(std::forward<E>(exception)), options);
    }
    // Kills t if it is a member (and not already being killed by the group).
    void killone(const any_task& t, kill_options options = {});
    void killone(const any_task& t, std::exception_ptr exception, kill_options options = {});

    std::size_t size() const noexcept { return members_.size(); }
    bool empty() const noexcept { return members_.empty(); }
    bool contains(const any_task& t) const { return members_.count(&t.core()) != 0; }
    // The members, in the order they joined.
    std::vector<any_task> tasks() const;

    // gevent's Group.full(): false; a pool is full when no slot is free.
    virtual bool full() const noexcept { return false; }

    // Runs fn on each input in members, and returns the results in input order (a vector, or
    // nothing for a void fn). Rethrows the first failure in input order, after killing what
    // still runs.
    template <class F, std::ranges::input_range Inputs>
    auto map(F&& fn, Inputs&& inputs);

    // Runs fn on each input in members, and yields the results in the order they finish. Tasks
    // are spawned by a feeder task while the loop runs; leaving the loop early kills what
    // still runs. The range must not outlive the group.
    template <class F, std::ranges::input_range Inputs>
    auto imap_unordered(F&& fn, Inputs&& inputs);

    // spawn(fn, args...), except that it never waits: on a full pool, the task returned waits
    // for a slot (outside the pool) and then runs fn in a member.
    template <class F, class... A>
    auto apply_async(F&& fn, A&&... args);

    // Iterates over the members. The loop must not wait: a member finishing or joining
    // meanwhile makes the next step throw green::error (iterate over tasks() instead).
    class iterator {
    public:
        using value_type = any_task;
        using difference_type = std::ptrdiff_t;
        const any_task& operator*() const;
        const any_task* operator->() const { return &**this; }
        iterator& operator++();
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.left_ == 0; }

    private:
        friend class group;
        iterator(const group* g, detail::list_node* node);
        void check() const;
        const group* group_;
        detail::list_node* node_;
        std::size_t left_;
        std::uint64_t changes_;
    };
    iterator begin() const;
    std::default_sentinel_t end() const noexcept { return {}; }

protected:
    // Pools take a slot before a task joins, and give it back when it leaves.
    virtual bool acquire_slot(std::optional<duration> timeout);
    virtual void release_slot() noexcept {}
    // Kills and waits for the members and for apply_async's waiting tasks; for destructors.
    void shutdown() noexcept;

private:
    struct member;
    void add_member(const any_task& t);
    void remove(member& m) noexcept;

    std::unordered_map<const detail::task_core*, std::unique_ptr<member>> members_;
    detail::list_head order_;
    event empty_;
    std::uint64_t changes_ = 0;              // for iterators
    std::unique_ptr<group> waiting_for_slot_;  // apply_async's tasks on a full pool
};

// gevent's Pool: a group with `size` slots.
class pool : public group {
public:
    // size: how many members may run at once; nullopt: no limit. With 0, spawn() waits forever.
    // green::error if negative.
    explicit pool(std::optional<int> size = std::nullopt);
    ~pool() override;

    // The number of slots (gevent's pool.size); nullopt when unbounded.
    std::optional<int> capacity() const noexcept { return size_; }
    // Slots not taken by members; 1 when unbounded, as gevent.
    int free_count() const noexcept;
    bool full() const noexcept override { return free_count() <= 0; }
    // Waits until a slot is free without taking it: the number free, 0 when the timeout
    // passes first.
    int wait_available(std::optional<duration> timeout = std::nullopt);

protected:
    bool acquire_slot(std::optional<duration> timeout) override;
    void release_slot() noexcept override;

private:
    std::optional<int> size_;
    std::optional<semaphore> slots_;  // none when unbounded (gevent's DummySemaphore)
};

// What imap_unordered returns: a single-pass range of the results, in completion order.
template <class R>
class imap_unordered_range {
public:
    imap_unordered_range(const imap_unordered_range&) = delete;
    imap_unordered_range& operator=(const imap_unordered_range&) = delete;
    ~imap_unordered_range() {
        std::vector<any_task> running{*feeder_};
        running.insert(running.end(), state_->spawned.begin(), state_->spawned.end());
        detail::kill_unfinished(running);
    }

    class iterator {
    public:
        using value_type = R;
        using difference_type = std::ptrdiff_t;
        R& operator*() const { return *range_->current_; }
        R* operator->() const { return &*range_->current_; }
        iterator& operator++() {
            range_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.at_end(); }

    private:
        friend class imap_unordered_range;
        explicit iterator(imap_unordered_range* r) : range_(r) {}
        bool at_end() const noexcept { return !range_->current_; }
        imap_unordered_range* range_;
    };
    // Waits for the first result (rethrowing its failure).
    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

private:
    friend class group;
    // Shared with the feeder and with the links on the tasks, which may outlive the range if
    // a kill does not take.
    struct state {
        queue<std::optional<task<R>>> finished;  // nullopt: nothing more will come
        std::vector<any_task> spawned;
        std::size_t running = 0;
        bool feeding = true;
        std::exception_ptr feeder_error;

        void one_finished(task<R> t) {
            --running;
            finished.put(std::move(t));
            if (!feeding && running == 0) finished.put(std::nullopt);
        }
    };

    template <class F, class Item>
    imap_unordered_range(group* g, F fn, std::vector<Item> items) : state_(std::make_shared<state>()) {
        feeder_.emplace(spawn(
            [g, s = state_](F f, std::vector<Item> inputs) {
                try {
                    for (Item& item : inputs) {
                        task<R> t = g->spawn(f, std::move(item));
                        s->spawned.push_back(t);
                        ++s->running;
                        t.rawlink([s](task<R> done) { s->one_finished(std::move(done)); });
                    }
                } catch (...) {
                    s->feeder_error = std::current_exception();
                }
                s->feeding = false;
                if (s->running == 0) s->finished.put(std::nullopt);
            },
            std::move(fn), std::move(items)));
    }

    void advance() {
        current_.reset();
        std::optional<task<R>> next = state_->finished.get();
        if (next)
            current_.emplace(next->get());
        else if (state_->feeder_error)
            std::rethrow_exception(std::exchange(state_->feeder_error, nullptr));
    }

    std::shared_ptr<state> state_;
    std::optional<task<void>> feeder_;
    std::optional<R> current_;
    bool started_ = false;
};

template <class F, std::ranges::input_range Inputs>
auto group::map(F&& fn, Inputs&& inputs) {
    using item_type = std::ranges::range_reference_t<Inputs>;
    using R = detail::spawn_result_t<F&, item_type>;
    std::vector<task<R>> started;
    try {
        for (auto&& item : inputs) started.push_back(spawn(fn, std::forward<decltype(item)>(item)));
        if constexpr (std::is_void_v<R>) {
            for (const task<R>& t : started) t.get();
        } else {
            std::vector<R> results;
            results.reserve(started.size());
            for (const task<R>& t : started) results.push_back(t.get());
            return results;
        }
    } catch (...) {
        detail::kill_unfinished(std::vector<any_task>(started.begin(), started.end()));
        throw;
    }
}

template <class F, std::ranges::input_range Inputs>
auto group::imap_unordered(F&& fn, Inputs&& inputs) {
    using item_type = detail::stored_t<std::ranges::range_reference_t<Inputs>>;
    using R = detail::spawn_result_t<F&, item_type>;
    static_assert(!std::is_void_v<R>, "imap_unordered needs a function that returns a value; use map() for void");
    std::vector<item_type> items;
    for (auto&& item : inputs) items.emplace_back(std::forward<decltype(item)>(item));
    return imap_unordered_range<R>(this, std::decay_t<F>(std::forward<F>(fn)), std::move(items));
}

template <class F, class... A>
auto group::apply_async(F&& fn, A&&... args) {
    using R = detail::spawn_result_t<F, A...>;
    if (!full()) return spawn(std::forward<F>(fn), std::forward<A>(args)...);
    if (!waiting_for_slot_) waiting_for_slot_ = std::make_unique<group>();
    return waiting_for_slot_->spawn(
        [this](std::decay_t<F> f, detail::stored_t<A>... a) -> R { return spawn(std::move(f), std::move(a)...).get(); },
        std::forward<F>(fn), std::forward<A>(args)...);
}

}  // namespace green
