// green/hub.hpp — layer 2: the hub and tasks, gevent's scheduler in C++.
//
// Each thread has a hub: a greenlet (child of the thread's main greenlet) running an event loop
// of callbacks, timers and epoll. spawn() makes a task — a greenlet whose parent is the hub —
// and queues its start; nothing runs until the spawner waits. Waiting anywhere (sleep, join, an
// event, a lock, a queue, a socket) switches to the hub, which switches to whoever can go on.
//
//     #include <green/hub.hpp>
//     #include <iostream>
//     using namespace std::chrono_literals;
//
//     std::string eat(std::string name) {
//         std::cout << name << " eat 1\n";
//         green::sleep(2s);                      // the hub runs play meanwhile
//         std::cout << name << " eat 2\n";
//         return "ate";
//     }
//
//     int main() {
//         auto g1 = green::spawn(eat, "egon");
//         auto g2 = green::spawn([] { green::sleep(1s); return 42; });
//         green::joinall({g1, g2});              // about 2 s, not 3
//         std::cout << g1.get() << ' ' << g2.get() << '\n';
//     }
//
// An exception escaping a task is stored in it and reported once on stderr by the hub
// ("<name> failed with <type>: <what>"); join() does not raise it, get() does. Killing a task
// throws green::greenlet_exit (or the exception you give) at the point where it waits; a killed
// task counts as successful. Waiting when nothing could ever wake you raises green::loop_exit;
// blocking inside the hub itself raises green::blocking_switch_error. docs/hub.md has the rules.
#pragma once

#include <green/detail/hub_core.hpp>
#include <green/greenlet.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace green {

// Raised in the main greenlet when it waits and nothing — no callback, timer, I/O or thread —
// could ever wake it (gevent's LoopExit). The first line of what() is "This operation would
// block forever"; the following lines name what was blocked.
class loop_exit : public error {
public:
    using error::error;
};

// Raised by a blocking call made from the hub itself: a raw callback or a rawlink, which must
// not wait (gevent's BlockingSwitchOutError).
class blocking_switch_error : public error {
public:
    using error::error;
};

class hub;
class any_task;
class threadpool;
template <class T>
class task;

namespace detail {

// Intrusive reference counting for the objects behind handles (tasks, async results).
class refcounted {
public:
    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

protected:
    virtual ~refcounted() = default;

private:
    std::atomic<std::uint32_t> refs_{1};
};

template <class T>
class ref_ptr {
public:
    ref_ptr() = default;
    explicit ref_ptr(T* p) noexcept : p_(p) {}  // adopts one reference
    ref_ptr(const ref_ptr& o) noexcept : p_(o.p_) {
        if (p_) p_->add_ref();
    }
    ref_ptr(ref_ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    template <class U>
        requires std::is_convertible_v<U*, T*>
    ref_ptr(const ref_ptr<U>& o) noexcept : p_(o.get()) {
        if (p_) p_->add_ref();
    }
    ref_ptr& operator=(ref_ptr o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~ref_ptr() {
        if (p_) p_->release();
    }
    T* get() const noexcept { return p_; }
    T* operator->() const noexcept { return p_; }
    T& operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};

void* allocate_small(std::size_t size);
void free_small(void* p, std::size_t size) noexcept;

// The non-template part of a task: its greenlet, its state, its outcome and its links.
class task_core : public refcounted, public link_source, public run_base {
public:
    // Tasks come and go by the hundred thousand: a per-thread cache of blocks serves them.
    static void* operator new(std::size_t size) { return allocate_small(size); }
    static void operator delete(void* p, std::size_t size) noexcept { free_small(p, size); }

    enum class phase : std::uint8_t { created, scheduled, running, done };
    enum class outcome : std::uint8_t { none, returned, exited, failed };

    task_core();
    ~task_core() override;

    bool ready() const noexcept override { return phase_ == phase::done; }
    // gevent's meaning: start() was called (the task is queued, running or done).
    bool started() const noexcept { return phase_ != phase::created; }
    bool successful() const noexcept { return outcome_ == outcome::returned || outcome_ == outcome::exited; }
    phase current_phase() const noexcept { return phase_; }
    outcome result_kind() const noexcept { return outcome_; }
    // The failure, or the greenlet_exit that killed it; null otherwise.
    const std::exception_ptr& error() const noexcept { return error_; }
    // Orders finished tasks by when they finished (0 until then).
    std::uint64_t finish_order() const noexcept { return finished_; }

    void start();                       // queue the start at the end of the run queue
    void start_later(duration delay);  // start from a timer
    bool join(std::optional<duration> timeout);
    void kill(std::exception_ptr exception, bool block, std::optional<duration> timeout);
    // Rethrows the failure, or the greenlet_exit of a killed task; timeout_error if not ready.
    void check_result(std::optional<duration> timeout);

    // "task-N" until set_name gives it a name (which its greenlet then shows too).
    std::string name() const;
    void set_name(std::string name);
    green::greenlet& greenlet() noexcept { return greenlet_; }

    // Links that call a function (link, rawlink, link_value, link_exception); owned here.
    enum class link_when : std::uint8_t { always, on_success, on_failure };
    std::uint64_t add_function_link(std::function<void()> fn, bool in_new_greenlet, link_when when);
    bool remove_function_link(std::uint64_t id) noexcept;

    // The return value as a green::value (empty for a move-only type).
    virtual value returned_value() const = 0;

    static task_core* from_live_node(list_node* n) noexcept { return static_cast<live_node*>(n)->task; }

protected:
    // Runs the task's function; stores its result, or lets the exception escape.
    virtual void call_function() = 0;
    // Drops the function and its arguments once they have run (or never will).
    virtual void clear_function() noexcept = 0;

private:
    struct live_node : list_node {
        task_core* task = nullptr;
    };
    // While the body finishes, the reference it holds is handed to the link notification
    // instead of taking a new one (an atomic increment and decrement saved per task).
    void retain() noexcept override {
        if (body_ref_) {
            body_ref_ = false;
            return;
        }
        add_ref();
    }
    void release_retained() noexcept override { release(); }
    bool body_ref_ = false;
    value invoke(value&&) override;  // the greenlet's run
    void body() noexcept;
    void finish(outcome kind, std::exception_ptr error) noexcept;
    static void on_start(callback& cb);
    static void on_start_timer(timer_node& t);

    phase phase_ = phase::created;
    outcome outcome_ = outcome::none;
    std::exception_ptr error_;
    green::greenlet greenlet_;
    std::uint64_t number_ = 0;
    std::uint64_t finished_ = 0;  // the hub's count of finished tasks when this one finished
    std::string name_;
    struct start_callback : callback {
        task_core* task = nullptr;
    } start_;
    struct start_timer : timer_node {
        task_core* task = nullptr;
    } start_timer_;
    live_node live_;
    struct function_link;
    std::vector<std::unique_ptr<function_link>> function_links_;
    std::uint64_t next_link_id_ = 1;
};

template <class T>
class task_result : public task_core {
public:
    std::optional<std::conditional_t<std::is_void_v<T>, none_t, T>> result;

    value returned_value() const override {
        using R = std::conditional_t<std::is_void_v<T>, none_t, T>;
        if constexpr (std::is_copy_constructible_v<R>)
            return result ? value::of(*result) : value();
        else
            return value();
    }
};

template <class T, class F, class... A>
class task_state final : public task_result<T> {
public:
    template <class G, class... B>
    explicit task_state(G&& f, B&&... args)
        : f_(std::forward<G>(f)), args_(std::in_place, std::forward<B>(args)...) {}

private:
    void call_function() override {
        if constexpr (std::is_void_v<T>) {
            std::apply(*f_, std::move(*args_));
            this->result.emplace();
        } else {
            this->result.emplace(std::apply(*f_, std::move(*args_)));
        }
    }
    void clear_function() noexcept override {
        f_.reset();
        args_.reset();
    }
    std::optional<F> f_;
    std::optional<std::tuple<A...>> args_;
};

template <class F, class... A>
using spawn_result_t = std::invoke_result_t<std::decay_t<F>&, detail::stored_t<A>...>;

template <class F, class... A>
auto make_task(F&& f, A&&... args) {
    using R = spawn_result_t<F, A...>;
    auto* state =
        new task_state<R, std::decay_t<F>, detail::stored_t<A>...>(std::forward<F>(f), std::forward<A>(args)...);
    return ref_ptr<task_result<R>>(state);
}

}  // namespace detail

// gevent's Hub: the thread's event loop, as a greenlet. get_hub() creates it on first use.
class hub {
public:
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // The hub greenlet (a child of the thread's main greenlet).
    green::greenlet greenlet() const;

    // Runs fn in the hub at its next pass, after what is already queued (FIFO). fn runs in the
    // hub: it must not block (blocking_switch_error); an exception is reported, not raised.
    void run_callback(std::function<void()> fn);
    // The same, from any thread; wakes the hub through its eventfd.
    void run_callback_threadsafe(std::function<void()> fn);

    // What the hub does with an exception escaping a task or a callback. The default prints
    // "<context> failed with <type>: <what>" to stderr. Returns the previous handler.
    using error_handler = std::function<void(std::string_view context, std::exception_ptr error)>;
    error_handler set_error_handler(error_handler handler);
    void handle_error(std::string_view context, std::exception_ptr error);

    // How long callbacks may keep running before timers and I/O get their turn (1 ms).
    void set_switch_interval(duration interval);
    duration switch_interval() const noexcept;

    // Waits until the loop has nothing left to do (true), or the timeout (false). gevent's
    // hub.join() and wait() with no arguments.
    bool join(std::optional<duration> timeout = std::nullopt);

    // The hub's own threadpool (gevent's hub.threadpool): 10 worker threads, made on first use
    // and stopped when the thread exits; run_in_thread() uses it. Declared in
    // <green/threadpool.hpp>.
    green::threadpool& threadpool();

protected:
    hub() = default;
    ~hub() = default;
};

// This thread's hub, created on first use.
hub& get_hub();

namespace detail {
void sleep_slow();
[[noreturn]] void throw_invalid_switch(const char* what);
}  // namespace detail

// Lets every other ready greenlet run once, then continues (gevent's sleep(0)). Inline for the
// same reason as greenlet::switch_to (green/detail/switch.hpp): a yield is a round trip through
// the hub, and an out-of-line call would cost a mispredicted return each time.
inline void sleep() {
#if !defined(GREEN_DETAIL_SANITIZED)
    detail::thread_core* ts = detail::tls_core;
    if (ts && ts->run_queue && ts->current != ts->hub && !ts->current->on_shared_stack) [[likely]] {
        // Queue our own resumption at the tail and switch to the hub. The callback unlinks
        // itself when it runs, or when an exception thrown in (a kill) unwinds this frame.
        detail::callback resume;
        resume.target = ts->current;
        ts->run_queue->push_back(resume);
        detail::switch_to(ts->hub);
        if (resume.linked()) [[unlikely]]
            detail::throw_invalid_switch("sleep");
        return;
    }
#endif
    detail::sleep_slow();
}
// Waits `d` (a timer in the hub). keep_alive=false is gevent's ref=False: the timer alone does
// not keep the loop alive. A negative duration is an error (green::error).
void sleep(duration d, bool keep_alive = true);

// Waits until the hub has nothing else to do right now: no queued callback, no ready I/O, no due
// timer (gevent's idle()). Timers and I/O that are not due yet do not count.
void idle();

struct kill_options {
    bool block = true;                // wait until the task is dead
    std::optional<duration> timeout;  // how long to wait when blocking
};

// A handle to a task of any result type: what joinall, killall, wait and iwait take.
class any_task {
public:
    // Waits until the task is done (true) or the timeout passes (false). Never raises the
    // task's exception.
    bool join(std::optional<duration> timeout = std::nullopt) const { return core_->join(timeout); }

    // Raises greenlet_exit (or `exception`) in the task at the point where it waits. A task
    // that never started never runs; its links still fire. Never raises.
    void kill(kill_options options = {}) const {
        core_->kill(std::make_exception_ptr(greenlet_exit()), options.block, options.timeout);
    }
    void kill(std::exception_ptr exception, kill_options options = {}) const {
        core_->kill(std::move(exception), options.block, options.timeout);
    }
    template <class E>
        requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr> &&
                 !std::is_same_v<std::decay_t<E>, kill_options>)
    void kill(E&& exception, kill_options options = {}) const {
        kill(std::make_exception_ptr(std::forward<E>(exception)), options);
    }

    // Queues an unstarted task's start (a second call does nothing), or starts it from a timer.
    void start() const { core_->start(); }
    void start_later(duration delay) const { core_->start_later(delay); }

    bool ready() const noexcept { return core_->ready(); }
    // Finished without an exception; a task killed by greenlet_exit counts as successful.
    bool successful() const noexcept { return core_->ready() && core_->successful(); }
    // start() was called: the task is queued, running or done (gevent's meaning).
    bool started() const noexcept { return core_->started(); }
    // gevent's bool(g): started and not finished.
    explicit operator bool() const noexcept { return core_->started() && !core_->ready(); }
    bool dead() const noexcept { return core_->ready(); }
    // The exception the task failed with; null if it did not fail (or is not done).
    std::exception_ptr exception() const noexcept {
        return core_->result_kind() == detail::task_core::outcome::failed ? core_->error() : nullptr;
    }
    // What gevent's Greenlet.value holds: the return value, the greenlet_exit that killed the
    // task, or None while it is not done or when it failed.
    value outcome() const;

    // Calls fn(*this) once the task is done, in a new greenlet (so it may block). Links run in
    // the order they were added; returns an id for unlink.
    std::uint64_t link(std::function<void(any_task)> fn) const;
    // Only when it succeeds / only when it fails.
    std::uint64_t link_value(std::function<void(any_task)> fn) const;
    std::uint64_t link_exception(std::function<void(any_task)> fn) const;
    // Calls fn(*this) in the hub itself: fn must not block.
    std::uint64_t rawlink(std::function<void(any_task)> fn) const;
    bool unlink(std::uint64_t id) const noexcept { return core_->remove_function_link(id); }

    std::string name() const { return core_->name(); }
    void set_name(std::string name) const { core_->set_name(std::move(name)); }
    green::greenlet greenlet() const { return core_->greenlet(); }

    friend bool operator==(const any_task& a, const any_task& b) noexcept { return a.core_.get() == b.core_.get(); }
    friend void green_repr(std::ostream& os, const any_task& t);

    // For the library's waiting functions.
    detail::task_core& core() const noexcept { return *core_; }
    const detail::ref_ptr<detail::task_core>& core_handle() const noexcept { return core_; }

protected:
    explicit any_task(detail::ref_ptr<detail::task_core> core) : core_(std::move(core)) {}
    std::uint64_t add_link(std::function<void(any_task)> fn, bool in_new_greenlet,
                           detail::task_core::link_when when) const;
    detail::ref_ptr<detail::task_core> core_;
};

// A task whose function returns T (gevent's Greenlet). Copies refer to the same task.
template <class T>
class task : public any_task {
public:
    // An unstarted task running fn(args...) once start()ed (gevent's Greenlet(run, *args)).
    template <class F, class... A>
        requires std::is_same_v<detail::spawn_result_t<F, A...>, T>
    explicit task(F&& fn, A&&... args) : task(detail::make_task(std::forward<F>(fn), std::forward<A>(args)...)) {}

    explicit task(detail::ref_ptr<detail::task_result<T>> state) : any_task(state), state_(state.get()) {}

    // The return value, waiting for it if needed; rethrows the task's exception (or the
    // greenlet_exit that killed it). With a timeout, timeout_error if it is not done by then;
    // get(0s) never blocks.
    T get(std::optional<duration> timeout = std::nullopt) const {
        core_->check_result(timeout);
        if constexpr (!std::is_void_v<T>) return *state_->result;
    }
    // The return value once done; nullopt before, and when it failed or was killed.
    template <class U = T>
        requires(!std::is_void_v<U>)
    std::optional<U> value() const {
        return state_->result;
    }

    // As any_task::link, but fn receives the typed task.
    using when = detail::task_core::link_when;
    std::uint64_t link(std::function<void(task)> fn) const { return add_typed(std::move(fn), true, when::always); }
    std::uint64_t link_value(std::function<void(task)> fn) const {
        return add_typed(std::move(fn), true, when::on_success);
    }
    std::uint64_t link_exception(std::function<void(task)> fn) const {
        return add_typed(std::move(fn), true, when::on_failure);
    }
    std::uint64_t rawlink(std::function<void(task)> fn) const { return add_typed(std::move(fn), false, when::always); }

private:
    std::uint64_t add_typed(std::function<void(task)> fn, bool in_new_greenlet, when w) const {
        detail::task_result<T>* state = state_;
        return add_link(
            [fn = std::move(fn), state](any_task) {
                state->add_ref();
                fn(task(detail::ref_ptr<detail::task_result<T>>(state)));
            },
            in_new_greenlet, w);
    }
    detail::task_result<T>* state_;
};

// Creates a task running fn(args...) and queues its start: it runs once the caller waits,
// after what is already queued. Arguments are decayed and stored (string literals as
// std::string).
template <class F, class... A>
auto spawn(F&& fn, A&&... args) {
    using R = detail::spawn_result_t<F, A...>;
    task<R> t(detail::make_task(std::forward<F>(fn), std::forward<A>(args)...));
    t.start();
    return t;
}

// Like spawn, but starts from a timer after `delay` (so spawn_later(0s, ...) runs after the
// spawns already queued).
template <class F, class... A>
auto spawn_later(duration delay, F&& fn, A&&... args) {
    using R = detail::spawn_result_t<F, A...>;
    task<R> t(detail::make_task(std::forward<F>(fn), std::forward<A>(args)...));
    t.start_later(delay);
    return t;
}

struct join_options {
    std::optional<duration> timeout;  // give up after this; the rest keep running
    bool raise_error = false;          // rethrow the first failure as soon as it is seen
    std::optional<std::size_t> count;  // return after this many are done
};

// Waits for the tasks; returns those done, in the order they finished (already finished ones
// first, in the order given). On timeout that is the subset done by then; nothing is killed.
std::vector<any_task> joinall(const std::vector<any_task>& tasks, join_options options = {});

// Anything iwait/wait can wait for: a task, an event, an async_result. Compares equal to the
// object it was made from.
class waitable {
public:
    waitable(const any_task& t) : source_(&t.core()), keep_(detail::ref_ptr<detail::task_core>(t.core_handle())) {}
    template <class T>
        requires requires(const T& x) { x.as_waitable(); }
    waitable(const T& x) : waitable(x.as_waitable()) {}
    // For primitives: `keep` (may be null) holds the source alive.
    waitable(detail::link_source* source, detail::ref_ptr<detail::refcounted> keep)
        : source_(source), keep_(std::move(keep)) {}

    bool ready() const noexcept { return source_->ready(); }
    detail::link_source& source() const noexcept { return *source_; }
    friend bool operator==(const waitable& a, const waitable& b) noexcept { return a.source_ == b.source_; }

private:
    detail::link_source* source_;
    detail::ref_ptr<detail::refcounted> keep_;
};

struct wait_options {
    std::optional<duration> timeout;   // stop there (no exception)
    std::optional<std::size_t> count;  // stop after this many
};

// gevent's iwait: iterates over the objects in the order they become ready (those already
// ready first, in the order given). Stops at the timeout or after `count`. Leaving the loop
// early removes its links. Not copyable: use it directly in a range-for.
class iwait_range {
public:
    iwait_range(std::vector<waitable> objects, wait_options options);
    iwait_range(const iwait_range&) = delete;
    iwait_range& operator=(const iwait_range&) = delete;
    ~iwait_range();

    class iterator {
    public:
        using value_type = waitable;
        using difference_type = std::ptrdiff_t;
        const waitable& operator*() const { return range_->objects_[range_->current_]; }
        const waitable* operator->() const { return &**this; }
        iterator& operator++() {
            range_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.range_->finished(); }

    private:
        friend class iwait_range;
        explicit iterator(iwait_range* r) : range_(r) {}
        iwait_range* range_;
    };
    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }
    // The position, in the objects given, of the one the iterator is at.
    std::size_t current_index() const noexcept { return current_; }
    bool finished() const noexcept { return done_; }

private:
    struct object_link;
    void advance();
    std::vector<waitable> objects_;
    wait_options options_;
    std::unique_ptr<object_link[]> links_;
    std::vector<std::size_t> ready_;  // indices, in the order they became ready
    std::size_t next_ready_ = 0;
    std::size_t yielded_ = 0;
    std::size_t current_ = 0;
    std::int64_t deadline_ = 0;
    detail::waiter* waiting_ = nullptr;
    bool started_ = false;
    bool done_ = false;
};

inline iwait_range iwait(std::vector<waitable> objects, wait_options options = {}) {
    return iwait_range(std::move(objects), options);
}
// gevent's wait(objects): the objects that became ready, in that order (all of iwait).
std::vector<waitable> wait(std::vector<waitable> objects, wait_options options = {});
// gevent's wait() with no objects: until the loop has nothing left to do (hub::join).
bool wait(std::optional<duration> timeout = std::nullopt);

struct killall_options {
    bool block = true;
    std::optional<duration> timeout;  // with block: timeout_error if they are not all dead by then
};
// Kills every task (unstarted ones never run) with greenlet_exit, or `exception`.
void killall(const std::vector<any_task>& tasks, killall_options options = {});
void killall(const std::vector<any_task>& tasks, std::exception_ptr exception, killall_options options = {});

}  // namespace green
