// green/threadpool.hpp — gevent.threadpool: run a blocking function on a worker thread while
// the calling greenlet waits cooperatively (asyncio's run_in_executor).
//
// A call that really blocks (a libc call nobody made cooperative, a C library doing its own
// I/O, a long computation) freezes every greenlet of its thread. Handed to a threadpool, it runs
// on a native worker thread instead; the greenlet that wants the result waits in the hub like
// any other wait, so the other greenlets keep running. Values and exceptions come back intact.
//
//     #include <green/threadpool.hpp>
//     #include <iostream>
//     #include <unistd.h>
//     using namespace std::chrono_literals;
//
//     int slow_square(int x) {
//         ::usleep(300'000);                       // really blocks: fine on a worker thread
//         return x * x;
//     }
//
//     int main() {
//         auto ticker = green::spawn([] {
//             for (int i = 0; i < 3; ++i) {
//                 green::sleep(100ms);
//                 std::cout << "tick\n";           // keeps ticking during the calls below
//             }
//         });
//         int v = green::run_in_thread(slow_square, 7);            // 49, in the hub's pool
//
//         green::threadpool pool(2);                               // at most 2 worker threads
//         green::async_result<int> r = pool.spawn(slow_square, 3); // returns at once
//         std::vector<int> all = pool.map(slow_square, std::vector<int>{1, 2, 3, 4});
//         std::cout << v + r.get() + all[3] << '\n';               // 49 + 9 + 16 = 74
//         ticker.join();
//     }
//
// The rules (docs/threadpool.md has the whole story):
// - A pool belongs to the hub of the thread that made it and is used from that thread only;
//   anything else raises green::error (gevent's InvalidThreadUseError). The one exception, as
//   in gevent: apply() and map() called from one of the pool's own workers run inline.
// - Worker threads start when jobs need them, at most maxsize, and exit after idle_timeout
//   without work. spawn() never blocks the thread: once maxsize jobs are unfinished, it waits
//   cooperatively for one to finish (gevent lets one more job queue first).
// - A finished job wakes the hub through its eventfd, never by polling. Until it has been
//   handed back, a job keeps the hub's loop alive: waiting for it never raises loop_exit.
// - A job's exception is raised again by get()/apply()/map(), and also reported by the hub's
//   error handler ("threadpool job failed with ..."), as gevent does.
// - Every job submitted runs to the end: nothing can interrupt a native thread. The destructor
//   waits for the unfinished jobs — blocking the thread, since a destructor cannot wait
//   cooperatively — and joins the workers; kill() does the same but waits cooperatively. When
//   the thread exits, its hub stops every pool of that thread the same way, after its
//   greenlets are killed (so nobody is left to receive the results; they are dropped).
#pragma once

#include <green/event.hpp>
#include <green/hub.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace green {

namespace detail {

class pool_core;

// One job of a threadpool: made and finished on the hub's thread, run on a worker thread. Its
// outcome stays here until finish(); apply() and map() wait for it (it is a link source) and
// take the value out, spawn() has it copied to an async_result.
class pool_job : public refcounted, public link_source {
public:
    bool ready() const noexcept override { return finished_; }

    // Worker thread: calls the function, keeping its result or its exception.
    void run() noexcept;
    // Hub thread: drops the function and its arguments, reports a failure to the hub,
    // publishes the outcome and wakes the waiters.
    void finish(hub& h) noexcept;

protected:
    virtual void invoke() = 0;                   // calls the function, stores the result
    virtual void discard_function() noexcept = 0;
    virtual void publish() = 0;                  // hands the outcome to spawn's async_result
    std::exception_ptr error_;

private:
    void retain() noexcept override { add_ref(); }
    void release_retained() noexcept override { release(); }
    bool finished_ = false;
};

template <class R>
class pool_job_result : public pool_job {
public:
    using stored = std::conditional_t<std::is_void_v<R>, none_t, R>;
    std::optional<stored> result;
    std::optional<async_result<R>> target;  // spawn()'s

    // Once finished: the value, moved out, or the exception raised again.
    stored take() {
        if (error_) std::rethrow_exception(error_);
        return std::move(*result);
    }

protected:
    void publish() override {
        if (!target) return;
        if (error_)
            target->set_exception(error_);
        else if constexpr (std::is_void_v<R>)
            target->set();
        else
            target->set(std::move(*result));
    }
};

template <class R, class F, class... A>
class pool_job_of final : public pool_job_result<R> {
public:
    template <class G, class... B>
    explicit pool_job_of(G&& f, B&&... args)
        : f_(std::forward<G>(f)), args_(std::in_place, std::forward<B>(args)...) {}

private:
    void invoke() override {
        if constexpr (std::is_void_v<R>) {
            std::apply(*f_, std::move(*args_));
            this->result.emplace();
        } else {
            this->result.emplace(std::apply(*f_, std::move(*args_)));
        }
    }
    void discard_function() noexcept override {
        f_.reset();
        args_.reset();
    }
    std::optional<F> f_;
    std::optional<std::tuple<A...>> args_;
};

// What a job of fn(args...) returns: by value (a returned reference is copied).
template <class F, class... A>
using pool_result_t = std::remove_cvref_t<spawn_result_t<F, A...>>;

template <class F, class... A>
auto make_pool_job(F&& f, A&&... args) {
    using R = pool_result_t<F, A...>;
    return ref_ptr<pool_job_result<R>>(
        new pool_job_of<R, std::decay_t<F>, stored_t<A>...>(std::forward<F>(f), std::forward<A>(args)...));
}

}  // namespace detail

template <class R, class F, class T>
class threadpool_imap;

// gevent's ThreadPool.
class threadpool {
public:
    // At most `maxsize` (>= 1) worker threads; each exits after `idle_timeout` without work.
    explicit threadpool(std::size_t maxsize, duration idle_timeout = std::chrono::seconds(5));
    threadpool(const threadpool&) = delete;
    threadpool& operator=(const threadpool&) = delete;
    // Waits (blocking the thread) for the unfinished jobs, hands their results over, joins the
    // threads; greenlets still waiting in spawn() for a slot get green::error. Destroying a
    // pool on another thread than its hub's terminates the program, as destroying a joinable
    // std::thread does.
    ~threadpool();

    // Runs fn(args...) on a worker thread; returns at once with its future result. Waits
    // cooperatively for a free slot if maxsize jobs are unfinished. Arguments are decayed and
    // stored (string literals as std::string); the function and the arguments are destroyed
    // on this thread once the job is over.
    template <class F, class... A>
    auto spawn(F&& fn, A&&... args) {
        using R = detail::pool_result_t<F, A...>;
        auto job = detail::make_pool_job(std::forward<F>(fn), std::forward<A>(args)...);
        async_result<R> result;
        job->target.emplace(result);
        submit(*job);
        return result;
    }

    // Runs fn(args...) on a worker thread and waits cooperatively for it: its value, or its
    // exception raised here. Move-only results are fine. Called from one of this pool's own
    // workers, runs fn inline (gevent does the same).
    template <class F, class... A>
    detail::pool_result_t<F, A...> apply(F&& fn, A&&... args) {
        if (on_own_worker()) return std::invoke(std::forward<F>(fn), std::forward<A>(args)...);
        detail::forbid_in_hub("threadpool::apply");
        auto job = detail::make_pool_job(std::forward<F>(fn), std::forward<A>(args)...);
        submit(*job);
        wait_for(*job);
        if constexpr (std::is_void_v<detail::pool_result_t<F, A...>>)
            job->take();
        else
            return job->take();
    }

    // fn(item) for every item, in parallel up to maxsize; the results in the items' order
    // (nothing for a void fn). Raises the exception of the first failed item in that order;
    // the jobs after it still run, their results dropped.
    template <class F, std::ranges::input_range Range>
    auto map(const F& fn, Range&& items) {
        using T = std::ranges::range_reference_t<Range>;
        using R = detail::pool_result_t<const F&, T>;
        std::vector<detail::ref_ptr<detail::pool_job_result<R>>> jobs;
        const bool inline_run = on_own_worker();
        if (!inline_run) detail::forbid_in_hub("threadpool::map");
        if constexpr (std::is_void_v<R>) {
            for (auto&& item : items) {
                if (inline_run) {
                    std::invoke(fn, item);
                    continue;
                }
                jobs.push_back(detail::make_pool_job(fn, std::forward<T>(item)));
                submit(*jobs.back());
            }
            for (auto& job : jobs) {
                wait_for(*job);
                job->take();
            }
        } else {
            std::vector<R> out;
            for (auto&& item : items) {
                if (inline_run) {
                    out.push_back(std::invoke(fn, item));
                    continue;
                }
                jobs.push_back(detail::make_pool_job(fn, std::forward<T>(item)));
                submit(*jobs.back());
            }
            for (auto& job : jobs) {
                wait_for(*job);
                out.push_back(job->take());
            }
            return out;
        }
    }

    // Like map, but lazy: iterate over the results in the items' order as they come, with at
    // most maxsize jobs ahead of the reader. The items are copied in first.
    template <class F, std::ranges::input_range Range>
    auto imap(F fn, Range&& items) {
        using T = detail::stored_t<std::ranges::range_reference_t<Range>>;
        using R = detail::pool_result_t<F&, T>;
        std::vector<T> copy;
        for (auto&& item : items) copy.emplace_back(std::forward<decltype(item)>(item));
        return threadpool_imap<R, F, T>(*this, std::move(fn), std::move(copy));
    }

    // Waits cooperatively until every job submitted so far is finished: true, or false when
    // the timeout passes first.
    bool join(std::optional<duration> timeout = std::nullopt);
    // Waits cooperatively until no job is left (as join()), then stops the worker threads
    // (gevent's kill). The pool stays usable: new jobs start new threads.
    void kill();

    // Worker threads alive now (gevent's size). May be read from any thread.
    std::size_t size() const;
    std::size_t maxsize() const noexcept;
    // Jobs submitted and not finished yet (gevent's len(pool)).
    std::size_t pending() const;

private:
    template <class R, class F, class T>
    friend class threadpool_imap;
    // Waits for a slot and queues the job (adds its own reference).
    void submit(detail::pool_job& job);
    // Waits cooperatively until the job is finished.
    void wait_for(detail::pool_job& job);
    bool on_own_worker() const noexcept;

    std::shared_ptr<detail::pool_core> core_;
};

// The range threadpool::imap returns: iterate it once, in a range-for.
template <class R, class F, class T>
class threadpool_imap {
    using job_ptr = detail::ref_ptr<detail::pool_job_result<R>>;

public:
    using stored = typename detail::pool_job_result<R>::stored;

    threadpool_imap(threadpool& pool, F fn, std::vector<T> items)
        : pool_(&pool), fn_(std::move(fn)), items_(std::move(items)) {}
    threadpool_imap(const threadpool_imap&) = delete;
    threadpool_imap& operator=(const threadpool_imap&) = delete;

    class iterator {
    public:
        using value_type = stored;
        using difference_type = std::ptrdiff_t;
        stored& operator*() const { return *range_->current_; }
        stored* operator->() const { return &*range_->current_; }
        iterator& operator++() {
            range_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.range_->finished(); }

    private:
        friend class threadpool_imap;
        explicit iterator(threadpool_imap* r) : range_(r) {}
        threadpool_imap* range_;
    };

    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }
    // Every result has been read.
    bool finished() const noexcept { return done_; }

private:
    void advance() {
        current_.reset();
        // Keep up to maxsize jobs ahead (at least the next one).
        while (next_ < items_.size() && (window_.empty() || window_.size() < pool_->maxsize())) {
            job_ptr job = detail::make_pool_job(fn_, std::move(items_[next_++]));
            pool_->submit(*job);
            window_.push_back(std::move(job));
        }
        if (window_.empty()) {
            done_ = true;
            return;
        }
        job_ptr job = std::move(window_.front());
        window_.pop_front();
        pool_->wait_for(*job);
        current_.emplace(job->take());
    }

    threadpool* pool_;
    F fn_;
    std::vector<T> items_;
    std::size_t next_ = 0;
    std::deque<job_ptr> window_;
    std::optional<stored> current_;
    bool started_ = false;
    bool done_ = false;
};

// Runs fn(args...) in the calling thread's hub's threadpool (get_hub().threadpool(): 10
// threads, as gevent's) and waits cooperatively for its value or exception.
template <class F, class... A>
auto run_in_thread(F&& fn, A&&... args) {
    return get_hub().threadpool().apply(std::forward<F>(fn), std::forward<A>(args)...);
}

}  // namespace green
