// The hub: its loop (callbacks, then timers and I/O), waiting and waking, loop_exit, error
// reporting, and thread-exit teardown.
//
// Scheduling rule (docs/hub.md): a pass runs the callbacks that were queued when it began, in
// order; callbacks queued meanwhile wait for the next pass. Timers and I/O are checked when the
// queue runs dry; when callbacks keep coming, they are still checked once 50 callbacks and a
// switch interval (1 ms by default, read from the coarse clock) have gone by since the last
// check, so a sleep() spinner cannot starve a ready socket or a due timer.
#include "hub_impl.hpp"

#include <green/timeout.hpp>

#include <cerrno>
#include <cstdio>
#include <sstream>

namespace green::detail {

namespace {

hub_impl* hub_of(thread_state* ts) noexcept { return static_cast<hub_impl*>(ts->hub_object.get()); }

void report_to_stderr(std::string_view context, std::exception_ptr error) {
    std::string line = std::string(context) + " failed with " + describe_exception(error) + "\n";
    std::fputs(line.c_str(), stderr);
}

struct function_callback : callback {
    std::function<void()> fn;
};

void run_function_callback(callback& cb) {
    std::unique_ptr<function_callback> self(static_cast<function_callback*>(&cb));
    std::function<void()> fn = std::move(self->fn);
    self.reset();
    fn();
}

bool is_exit(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const greenlet_exit&) {
        return true;
    } catch (...) {
        return false;
    }
}

struct wait_timer : timer_node {
    waiter* w = nullptr;
};

}  // namespace

std::string describe_exception(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return type_name(typeid(x)) + ": " + x.what();
    } catch (const greenlet_exit& x) {
        return type_name(typeid(x)) + (*x.what() ? std::string(": ") + x.what() : std::string());
    } catch (const timeout_error& x) {
        return std::string("green::timeout_error: ") + x.what();
    } catch (...) {
        const std::type_info* type = abi::__cxa_current_exception_type();
        return type ? type_name(*type) : std::string("unknown exception");
    }
}

// ---- the hub object ---------------------------------------------------------------------

hub_impl::hub_impl(thread_state* state)
    : ts(state),
      hub_greenlet([this] { loop(); }, green::greenlet::adopt((add_ref(state->main), state->main)), {.name = "hub", .policy = stack_policy::dedicated}),
      hub_core(hub_greenlet.native()) {
    cached_now = now_ns();
    last_poll = coarse_now_ns();
    ts->hub = hub_core;
    ts->run_queue = &pending;
}

hub_impl::~hub_impl() {
    shutdown();  // a no-op when the thread's teardown already did it
    ts->hub = nullptr;
    ts->run_queue = nullptr;
}

hub_impl& this_hub() {
    if (thread_state* ts = existing_state(); ts && ts->hub_object) [[likely]]
        return *static_cast<hub_impl*>(ts->hub_object.get());
    thread_state* ts = current_state();
    auto h = std::make_unique<hub_impl>(ts);
    hub_impl& ref = *h;
    ts->hub_object = std::move(h);
    return ref;
}

hub_impl* existing_hub() noexcept {
    thread_state* ts = existing_state();
    return ts ? hub_of(ts) : nullptr;
}

void hub_impl::loop() {
    for (;;) {
        run_pass();
        if (!pending.empty()) {
            // Callbacks keep coming (a sleep() spinner): timers and I/O still get a turn once
            // 50 callbacks and a switch interval have gone by since they last had one.
            if (callbacks_since_poll >= 50) {
                if (coarse_now_ns() - last_poll >= switch_interval_ns)
                    poll_once(0);
                else
                    callbacks_since_poll = 0;  // look at the clock again 50 callbacks later
            }
        } else if (!idlers.empty()) {
            // Someone waits for idleness: look at I/O and timers without blocking, and if that
            // queues nothing either, the hub is idle.
            poll_once(0);
            if (pending.empty()) {
                list_head now;
                now.splice_back(idlers);
                while (list_node* n = now.pop_front()) wake_now(*static_cast<waiter_node*>(n)->owner);
            }
        } else if (!alive()) {
            if (!idle_waiters.empty()) {
                // Only those waiting when the loop went idle: a woken one may wait again.
                list_head idle;
                idle.splice_back(idle_waiters);
                while (list_node* n = idle.pop_front()) wake_now(*static_cast<waiter_node*>(n)->owner);
            } else {
                raise_loop_exit();
            }
        } else {
            poll_once(next_timeout());
        }
    }
}

void hub_impl::run_pass() {
    list_head running;
    running.splice_back(pending);
    // If the hub itself is killed mid-pass (thread exit), what did not run goes back to the
    // front of the queue, where shutdown() discards it.
    struct requeue {
        list_head& running;
        list_head& pending;
        ~requeue() {
            if (running.empty()) return;
            running.splice_back(pending);
            pending.splice_back(running);
        }
    } on_unwind{running, pending};
    while (list_node* n = running.pop_front()) {
        auto& cb = static_cast<callback&>(*n);
        ++callbacks_since_poll;
        try {
            if (!cb.run)
                green::detail::switch_to(cb.target);
            else
                cb.run(cb);
        } catch (const greenlet_exit&) {
            throw;  // the hub itself is being killed (thread exit)
        } catch (...) {
            handle_error("callback", std::current_exception());
        }
    }
}

void hub_impl::poll_once(std::int64_t timeout_ns) {
    // Readers that waited on a guess (wait_fd's `guess`) are resumed after this poll whether or
    // not it has an event for them; those who wait again during it are the next poll's.
    list_head guesses;
    guesses.splice_back(guessed);
    int n = io.wait(guesses.empty() ? timeout_ns : 0);
    ++polls;
    cached_now = now_ns();
    last_poll = coarse_now_ns();
    callbacks_since_poll = 0;
    if (cached_now - last_trim >= cache_trim_interval_ns) {
        last_trim = cached_now;
        trim_small_cache();
    }
    dispatch_io(n);
    while (list_node* g = guesses.pop_front()) wake_now(*static_cast<waiter_node*>(g)->owner);
    run_timers();
}

void hub_impl::dispatch_io(int count) {
    const epoll_event* events = io.events();
    for (int i = 0; i < count; ++i) {
        const std::uint64_t token = events[i].data.u64;
        const std::uint32_t ev = events[i].events;
        if (token == poller::wake_token) {
            io.drain_wake();
            run_threadsafe_callbacks();
            continue;
        }
        const int fd = static_cast<int>(token);
        try {
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                if (fd < static_cast<int>(fds.size()) && fds[fd] && fds[fd]->reader) wake_now(*fds[fd]->reader);
            }
            // Waking the reader may have closed the fd: look it up again.
            if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
                if (fd < static_cast<int>(fds.size()) && fds[fd] && fds[fd]->writer) wake_now(*fds[fd]->writer);
            }
        } catch (const greenlet_exit&) {
            throw;
        } catch (...) {
            handle_error("I/O callback", std::current_exception());
        }
    }
}

void hub_impl::run_timers() {
    // Timers armed while these fire wait for the next iteration, even when already due.
    const std::uint64_t armed_before = timer_sequence;
    while (timer_node* t = timers.pop_due(cached_now, armed_before)) {
        try {
            t->fire(*t);
        } catch (const greenlet_exit&) {
            throw;
        } catch (...) {
            handle_error("timer", std::current_exception());
        }
    }
}

void hub_impl::run_threadsafe_callbacks() {
    std::vector<std::function<void()>> batch;
    {
        std::lock_guard<std::mutex> lock(threadsafe_lock);
        batch.swap(threadsafe_queue);
        wake_requested.store(false, std::memory_order_relaxed);
    }
    for (auto& fn : batch) {
        try {
            fn();
        } catch (const greenlet_exit&) {
            throw;
        } catch (...) {
            handle_error("callback", std::current_exception());
        }
    }
}

bool hub_impl::alive() const noexcept {
    return !pending.empty() || timers.ref_count() > 0 || io_waiters > 0 ||
           external_refs.load(std::memory_order_acquire) > 0 || wake_requested.load(std::memory_order_relaxed);
}

std::int64_t hub_impl::next_timeout() noexcept {
    timer_node* t = timers.top();
    if (!t) return -1;
    std::int64_t left = t->deadline - now_ns();
    return left > 0 ? left : 0;
}

void hub_impl::raise_loop_exit() {
    std::ostringstream message;
    message << "This operation would block forever";
    std::size_t shown = 0;
    blocked.for_each([&](list_node* n) {
        waiter* w = static_cast<waiter_node*>(n)->owner;
        if (shown++ < 8) {
            add_ref(w->greenlet);
            green::greenlet g = green::greenlet::adopt(w->greenlet);
            message << "\n\t" << (g.is_main() ? std::string("the main greenlet") : green::repr(g)) << " waits in "
                    << w->what;
        }
    });
    if (shown > 8) message << "\n\t... and " << shown - 8 << " more";
    green::greenlet main = green::greenlet::adopt((add_ref(ts->main), ts->main));
    try {
        main.throw_(loop_exit(message.str()));
    } catch (const greenlet_exit&) {
        throw;
    } catch (...) {
        handle_error("loop_exit", std::current_exception());
    }
}

void hub_impl::arm(timer_node& t, std::int64_t delay_ns) {
    if (t.armed()) timers.remove(&t);
    t.deadline = now_ns() + delay_ns;
    t.sequence = timer_sequence++;
    timers.push(&t);
}

fd_watch& hub_impl::watch(int fd) {
    if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "green: wait on a negative fd");
    if (static_cast<std::size_t>(fd) >= fds.size()) fds.resize(static_cast<std::size_t>(fd) + 1);
    if (!fds[fd]) fds[fd] = std::make_unique<fd_watch>();
    return *fds[fd];
}

void hub_impl::forget_fd(int fd, int error) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds.size() || !fds[fd]) return;
    fd_watch& w = *fds[fd];
    if (w.registered) io.remove(fd);
    w.registered = false;
    w.drained_before_poll = 0;
    // Waiters learn that their fd is gone without touching it again (gevent's cancel_wait).
    if (w.reader) {
        w.reader->error = error;
        wake_soon(*w.reader, wake_reason::cancelled);
    }
    if (w.writer) {
        w.writer->error = error;
        wake_soon(*w.writer, wake_reason::cancelled);
    }
}

// Thread exit: kill the tasks and let them clean up (the loop keeps running for that), then
// throw greenlet_exit into anything still waiting in the hub, then stop the hub greenlet, so
// that nothing is left referring to the hub when it goes.
void hub_impl::shutdown() noexcept {
    if (shut_down_) return;
    shut_down_ = true;
    if (ts->current != ts->main) {
        closing = true;
        ts->run_queue = nullptr;
        close_attachments();
        return;
    }
    try {
        std::vector<ref_ptr<task_core>> tasks;
        live_tasks.for_each([&](list_node* n) {
            task_core* t = task_core::from_live_node(n);
            t->add_ref();
            tasks.emplace_back(t);
        });
        auto reason = std::make_exception_ptr(greenlet_exit("Killing the task because its thread is exiting."));
        for (auto& t : tasks) t->kill(reason, false, std::nullopt);
        for (auto& t : tasks)
            if (!t->join(duration(std::chrono::seconds(1))))
                std::fprintf(stderr, "green: task '%s' did not end at thread exit\n", t->name().c_str());
    } catch (...) {
    }
    closing = true;
    ts->run_queue = nullptr;
    for (int round = 0; !blocked.empty() && round < 100; ++round) {
        waiter* w = static_cast<waiter_node*>(blocked.front())->owner;
        greenlet_impl* g = impl(w->greenlet);
        green::greenlet victim = green::greenlet::adopt((add_ref(g), g));
        green::greenlet original_parent = *victim.parent();
        try {
            victim.set_parent(green::greenlet::adopt((add_ref(ts->main), ts->main)));
            victim.throw_(greenlet_exit("Killing the greenlet because its thread is exiting."));
        } catch (...) {
        }
        try {
            if (!victim.dead()) victim.set_parent(original_parent);
        } catch (...) {
        }
        if (w->blocked.linked() && &w->blocked == blocked.front()) w->blocked.unlink();
    }
    // Nobody can wait any more: stop what could still call in from other threads.
    close_attachments();
    if (hub_greenlet) {
        try {
            hub_greenlet.throw_(greenlet_exit("Stopping the hub because its thread is exiting."));
        } catch (...) {
        }
    }
    while (list_node* n = pending.pop_front()) {
        auto& cb = static_cast<callback&>(*n);
        if (cb.discard) cb.discard(cb);
    }
}

void hub_impl::close_attachments() noexcept {
    while (list_node* n = attachments.pop_front()) static_cast<hub_attachment*>(n)->hub_closing();
}

// ---- waiting ----------------------------------------------------------------------------

bool in_hub() noexcept {
    const thread_core* tc = tls_core;
    return tc && tc->hub && tc->current == tc->hub;
}

void forbid_in_hub(const char* what) {
    if (in_hub())
        throw blocking_switch_error(std::string("Impossible to call blocking function in the event loop callback (") +
                                    what + ")");
}

void throw_negative_timeout(const char* what) {
    throw error(std::string(what) + ": negative timeout");
}

bool block(waiter& w, std::optional<duration> timeout, bool timeout_keeps_loop_alive) {
    hub_impl& h = this_hub();
    thread_state* ts = h.ts;
    if (ts->current == h.hub_core)
        throw blocking_switch_error(std::string("Impossible to call blocking function in the event loop callback (") +
                                    w.what + ")");
    if (h.closing) throw error(std::string(w.what) + ": the thread's hub is shutting down");
    if (current_impl(ts)->on_shared_stack)
        throw error(std::string(w.what) +
                    ": a greenlet on a shared stack cannot wait in the hub (give it stack_policy::dedicated)");
    check_timeout(timeout, w.what);
    w.greenlet = ts->current;
    w.reason = wake_reason::waiting;
    h.blocked.push_back(w.blocked);
    wait_timer timer;
    if (timeout) {
        timer.w = &w;
        timer.ref = timeout_keeps_loop_alive;
        timer.fire = [](timer_node& t) { wake_now(*static_cast<wait_timer&>(t).w, wake_reason::timed_out); };
        h.arm(timer, timeout->ns.count());
    }
    struct cleanup {
        hub_impl& h;
        waiter& w;
        wait_timer& t;
        ~cleanup() {
            if (t.armed()) h.timers.remove(&t);
            w.resume.unlink();
            w.blocked.unlink();
        }
    } on_exit{h, w, timer};
    for (;;) {
        green::detail::switch_to(h.hub_core);
        if (w.reason != wake_reason::waiting) break;
        // Someone switched into a waiting greenlet by hand (gevent's InvalidSwitchError).
        throw error(std::string("invalid switch into a greenlet waiting in ") + w.what);
    }
    return w.reason == wake_reason::woken;
}

void wake_now(waiter& w, wake_reason reason) {
    if (w.reason != wake_reason::waiting) return;
    if (!in_hub()) {
        wake_soon(w, reason);
        return;
    }
    w.reason = reason;
    green::detail::switch_to(w.greenlet);
}

void wake_soon(waiter& w, wake_reason reason) {
    if (w.reason != wake_reason::waiting) return;
    w.reason = reason;
    w.resume.run = nullptr;
    w.resume.target = w.greenlet;
    schedule(w.resume);
}

void schedule(callback& cb) { this_hub().pending.push_back(cb); }

void arm(timer_node& t, duration after) { this_hub().arm(t, after.ns.count()); }

void disarm(timer_node& t) noexcept {
    if (!t.armed()) return;
    if (hub_impl* h = existing_hub()) h->timers.remove(&t);
}

void timer_node::disarm_slow() noexcept { disarm(*this); }

// ---- links ------------------------------------------------------------------------------

void link_source::rawlink(link& l) {
    links_.push_back(l);
    if (ready()) notify_links();
}

void link_source::notify_links() {
    if (notify_.linked() || links_.empty()) return;
    retain();
    schedule(notify_);
}

void link_source::fire_links(callback& cb) {
    link_source* self = static_cast<notify_callback&>(cb).source;
    // Fire what is linked now, in order. A link may wake a greenlet that destroys the source
    // (an event on its stack, whose wait() just returned): the destructor clears `alive`, and
    // then the source is not touched again. Refcounted sources are retained meanwhile.
    list_head firing;
    firing.splice_back(self->links_);
    bool alive = true;
    self->firing_alive_ = &alive;
    struct release_at_end {
        link_source* s;
        bool& alive;
        ~release_at_end() {
            if (!alive) return;
            s->firing_alive_ = nullptr;
            s->release_retained();
        }
    } guard{self, alive};
    while (list_node* n = firing.pop_front()) {
        try {
            static_cast<link&>(*n).fire(static_cast<link&>(*n));
        } catch (const greenlet_exit&) {
            if (alive) self->links_.splice_back(firing);
            throw;
        } catch (...) {
            this_hub().handle_error("link", std::current_exception());
        }
    }
}

bool wait_ready(link_source& source, std::optional<duration> timeout, const char* what) {
    check_timeout(timeout, what);
    if (source.ready()) return true;
    link_waiter lw;  // block() refuses to wait in the hub; the link then unlinks itself
    lw.w.what = what;
    source.rawlink(lw);
    return block(lw.w, timeout);
}

}  // namespace green::detail

namespace green {

using namespace detail;

green::greenlet hub::greenlet() const { return static_cast<const hub_impl*>(this)->hub_greenlet; }

void hub::run_callback(std::function<void()> fn) {
    auto* cb = new function_callback;
    cb->run = &run_function_callback;
    cb->discard = [](callback& c) { delete static_cast<function_callback*>(&c); };
    cb->fn = std::move(fn);
    static_cast<hub_impl*>(this)->pending.push_back(*cb);
}

void hub::run_callback_threadsafe(std::function<void()> fn) {
    auto* h = static_cast<hub_impl*>(this);
    bool first;
    {
        std::lock_guard<std::mutex> lock(h->threadsafe_lock);
        first = h->threadsafe_queue.empty();
        h->threadsafe_queue.push_back(std::move(fn));
        h->wake_requested.store(true, std::memory_order_relaxed);
    }
    if (first) h->io.wake();
}

hub::error_handler hub::set_error_handler(error_handler handler) {
    return std::exchange(static_cast<hub_impl*>(this)->on_error, std::move(handler));
}

void hub::handle_error(std::string_view context, std::exception_ptr error) {
    auto* h = static_cast<hub_impl*>(this);
    if (is_exit(error)) return;  // greenlet_exit is not an error
    try {
        if (h->on_error)
            h->on_error(context, error);
        else
            report_to_stderr(context, error);
    } catch (...) {
        // An error handler that fails must not lose the original report.
        report_to_stderr(context, error);
    }
}

void hub::set_switch_interval(duration interval) { static_cast<hub_impl*>(this)->switch_interval_ns = interval.ns.count(); }

duration hub::switch_interval() const noexcept {
    return std::chrono::nanoseconds(static_cast<const hub_impl*>(this)->switch_interval_ns);
}

bool hub::join(std::optional<duration> timeout) {
    auto* h = static_cast<hub_impl*>(this);
    waiter w;
    w.what = "hub::join";
    waiter_node idle;
    idle.owner = &w;
    h->idle_waiters.push_back(idle);
    // The timeout alone must not keep the loop alive, or the loop would never be idle.
    return block(w, timeout, false);
}

hub& get_hub() { return this_hub(); }

void detail::throw_invalid_switch(const char* what) {
    throw error(std::string("invalid switch into a greenlet waiting in ") + what);
}

void detail::sleep_slow() {
    hub_impl& h = this_hub();
    thread_state* ts = h.ts;
    if (ts->current == h.hub_core)
        throw blocking_switch_error("Impossible to call blocking function in the event loop callback (sleep)");
    if (h.closing) throw error("sleep: the thread's hub is shutting down");
    if (current_impl(ts)->on_shared_stack)
        throw error("sleep: a greenlet on a shared stack cannot wait in the hub (give it stack_policy::dedicated)");
    // A yield needs no waiter: queue our own resumption at the tail and switch to the hub. The
    // callback is unlinked when it runs, or by the guard if an exception is thrown in first.
    callback resume;
    resume.target = ts->current;
    h.pending.push_back(resume);
    green::detail::switch_to(h.hub_core);
    if (resume.linked()) throw_invalid_switch("sleep");
}

void sleep(duration d, bool keep_alive) {
    check_timeout(d, "sleep");
    if (d.ns.count() == 0) return sleep();
    waiter w;
    w.what = "sleep";
    block(w, d, keep_alive);
}

bool wait(std::optional<duration> timeout) { return get_hub().join(timeout); }

void idle() {
    hub_impl& h = this_hub();
    waiter w;
    w.what = "idle";
    waiter_node node;
    node.owner = &w;
    h.idlers.push_back(node);
    block(w);
}

}  // namespace green
