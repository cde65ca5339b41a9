// Tasks: starting, running, finishing, killing, joining and their links; joinall, killall,
// wait and iwait.
#include "hub_impl.hpp"

#include <green/timeout.hpp>
#include <algorithm>

namespace green::detail {

struct task_core::function_link : link {
    task_core* owner = nullptr;
    std::uint64_t id = 0;
    bool in_new_greenlet = true;
    link_when when = link_when::always;
    std::function<void()> fn;

    static void fire_it(link& l) {
        auto& self = static_cast<function_link&>(l);
        task_core* t = self.owner;
        const bool wanted =
            self.when == link_when::always || (self.when == link_when::on_success) == t->successful();
        // One-shot: drop the link (and what it captured) before running it.
        std::function<void()> fn = std::move(self.fn);
        const bool spawn_greenlet = self.in_new_greenlet;
        t->remove_function_link(self.id);
        if (!wanted) return;
        if (spawn_greenlet) {
            // gevent runs link callbacks in a new greenlet, so they may block.
            green::greenlet g(std::move(fn), this_hub().hub_greenlet, {.name = "link", .policy = stack_policy::dedicated});
            g.switch_to();
        } else {
            fn();
        }
    }
};

task_core::task_core()
    : greenlet_(green::greenlet::adopt(create_borrowing(this, this_hub().hub_core, {.policy = stack_policy::dedicated}))),
      number_(++this_hub().task_counter) {
    start_.run = &on_start;
    start_.discard = [](callback& cb) { static_cast<start_callback&>(cb).task->release(); };
    start_.task = this;
    start_timer_.task = this;
    start_timer_.fire = &on_start_timer;
    live_.task = this;
}

// A task dropped before it ever started: its greenlet may outlive it (someone holds it), so it
// must not keep a run function that refers to this object.
task_core::~task_core() { clear_run(greenlet_.native()); }

std::string task_core::name() const { return name_.empty() ? "task-" + std::to_string(number_) : name_; }

void task_core::set_name(std::string name) {
    name_ = std::move(name);
    greenlet_.set_name(name_);
}

value task_core::invoke(value&&) {
    body();
    return value();
}

void task_core::start() {
    if (phase_ != phase::created) return;  // idempotent, as gevent's start()
    phase_ = phase::scheduled;
    add_ref();  // held by the queued start, then by the running body
    this_hub().live_tasks.push_back(live_);
    schedule(start_);
}

void task_core::start_later(duration delay) {
    check_timeout(delay, "start_later");
    if (phase_ != phase::created) return;
    phase_ = phase::scheduled;
    add_ref();
    this_hub().live_tasks.push_back(live_);
    arm(start_timer_, delay);
}

void task_core::on_start(callback& cb) {
    task_core* t = static_cast<start_callback&>(cb).task;
    t->phase_ = phase::running;
    start_greenlet(t->greenlet_.native());
}

void task_core::on_start_timer(timer_node& timer) {
    task_core* t = static_cast<start_timer&>(timer).task;
    t->phase_ = phase::running;
    start_greenlet(t->greenlet_.native());
}

// Runs in the task's greenlet.
void task_core::body() noexcept {
    // The start's reference is ours now; finish() may hand it on to the link notification.
    body_ref_ = true;
    outcome kind;
    std::exception_ptr error;
    try {
        call_function();
        kind = outcome::returned;
    } catch (const greenlet_exit&) {
        kind = outcome::exited;
        error = std::current_exception();
    } catch (...) {
        kind = outcome::failed;
        error = std::current_exception();
    }
    finish(kind, std::move(error));
    if (body_ref_) {
        body_ref_ = false;
        release();
    }
}

void task_core::finish(outcome kind, std::exception_ptr error) noexcept {
    phase_ = phase::done;
    finished_ = ++this_hub().finished_tasks;
    outcome_ = kind;
    error_ = std::move(error);
    live_.unlink();
    clear_function();
    if (kind == outcome::failed) this_hub().handle_error(name(), error_);
    notify_links();
}

bool task_core::join(std::optional<duration> timeout) { return wait_ready(*this, timeout, "task::join"); }

void task_core::kill(std::exception_ptr exception, bool block, std::optional<duration> timeout) {
    check_timeout(timeout, "task::kill");
    if (ready()) return;
    const bool exits = [&] {
        try {
            std::rethrow_exception(exception);
        } catch (const greenlet_exit&) {
            return true;
        } catch (...) {
            return false;
        }
    }();
    if (phase_ == phase::created || phase_ == phase::scheduled) {
        // Never started: it never will, and its links still fire.
        const bool was_scheduled = phase_ == phase::scheduled;
        start_.unlink();
        disarm(start_timer_);
        finish(exits ? outcome::exited : outcome::failed, std::move(exception));
        if (was_scheduled) release();
        return;
    }
    if (greenlet_ == getcurrent()) std::rethrow_exception(exception);  // killing yourself
    // Raised where the task waits, from the hub (gevent's _kill callback).
    ref_ptr<task_core> self((add_ref(), this));
    this_hub().run_callback([self, exception] {
        if (!self->ready()) self->greenlet_.throw_(exception);
    });
    if (block) {
        try {
            join(timeout);
        } catch (const timeout_error&) {
        }
    }
}

void task_core::check_result(std::optional<duration> timeout) {
    check_timeout(timeout, "task::get");
    if (!ready()) {
        if (timeout && timeout->ns.count() == 0) throw timeout_error(0, *timeout);
        if (!join(timeout)) throw timeout_error(0, *timeout);
    }
    if (outcome_ == outcome::failed || outcome_ == outcome::exited) std::rethrow_exception(error_);
}

std::uint64_t task_core::add_function_link(std::function<void()> fn, bool in_new_greenlet, link_when when) {
    auto l = std::make_unique<function_link>();
    l->owner = this;
    l->id = next_link_id_++;
    l->in_new_greenlet = in_new_greenlet;
    l->when = when;
    l->fn = std::move(fn);
    l->fire = &function_link::fire_it;
    function_link& ref = *l;
    function_links_.push_back(std::move(l));
    rawlink(ref);
    return ref.id;
}

bool task_core::remove_function_link(std::uint64_t id) noexcept {
    for (auto it = function_links_.begin(); it != function_links_.end(); ++it) {
        if ((*it)->id == id) {
            function_links_.erase(it);
            return true;
        }
    }
    return false;
}

}  // namespace green::detail

namespace green {

using namespace detail;

value any_task::outcome() const {
    switch (core_->result_kind()) {
        case task_core::outcome::returned: return core_->returned_value();
        case task_core::outcome::exited: return value::of(core_->error());
        default: return value::of(none);
    }
}

std::uint64_t any_task::add_link(std::function<void(any_task)> fn, bool in_new_greenlet,
                                 task_core::link_when when) const {
    task_core* core = core_.get();
    return core->add_function_link(
        [fn = std::move(fn), core] {
            core->add_ref();
            fn(any_task(ref_ptr<task_core>(core)));
        },
        in_new_greenlet, when);
}

std::uint64_t any_task::link(std::function<void(any_task)> fn) const {
    return add_link(std::move(fn), true, task_core::link_when::always);
}
std::uint64_t any_task::link_value(std::function<void(any_task)> fn) const {
    return add_link(std::move(fn), true, task_core::link_when::on_success);
}
std::uint64_t any_task::link_exception(std::function<void(any_task)> fn) const {
    return add_link(std::move(fn), true, task_core::link_when::on_failure);
}
std::uint64_t any_task::rawlink(std::function<void(any_task)> fn) const {
    return add_link(std::move(fn), false, task_core::link_when::always);
}

void green_repr(std::ostream& os, const any_task& t) {
    os << "<task '" << t.name() << "'";
    if (t.ready())
        os << (t.successful() ? " done" : " failed");
    else
        os << (t.started() ? " started" : " unstarted");
    os << '>';
}

// ---- iwait ------------------------------------------------------------------------------

struct iwait_range::object_link : link {
    iwait_range* range = nullptr;
    std::size_t index = 0;
};

iwait_range::iwait_range(std::vector<waitable> objects, wait_options options)
    : objects_(std::move(objects)), options_(options) {
    check_timeout(options_.timeout, "iwait");
    links_ = std::make_unique<object_link[]>(objects_.size());
    if (options_.timeout) deadline_ = now_ns() + options_.timeout->ns.count();
    for (std::size_t i = 0; i < objects_.size(); ++i) {
        object_link& l = links_[i];
        l.range = this;
        l.index = i;
        l.fire = [](link& base) {
            auto& self = static_cast<object_link&>(base);
            iwait_range* r = self.range;
            r->ready_.push_back(self.index);
            if (r->waiting_) wake_now(*r->waiting_);
        };
        objects_[i].source().rawlink(l);
    }
}

iwait_range::~iwait_range() = default;  // the links unlink themselves

void iwait_range::advance() {
    const std::size_t limit = options_.count ? std::min(*options_.count, objects_.size()) : objects_.size();
    if (done_ || yielded_ >= limit) {
        done_ = true;
        return;
    }
    while (next_ready_ >= ready_.size()) {
        std::optional<duration> left;
        if (options_.timeout) {
            std::int64_t remaining = deadline_ - now_ns();
            if (remaining < 0) remaining = 0;
            left = std::chrono::nanoseconds(remaining);
        }
        waiter w;
        w.what = "iwait";
        waiting_ = &w;
        struct clear {
            detail::waiter*& slot;
            ~clear() { slot = nullptr; }
        } reset{waiting_};
        if (!block(w, left)) {
            done_ = true;
            return;
        }
    }
    current_ = ready_[next_ready_++];
    ++yielded_;
}

std::vector<waitable> wait(std::vector<waitable> objects, wait_options options) {
    std::vector<waitable> out;
    for (const waitable& w : iwait(std::move(objects), options)) out.push_back(w);
    return out;
}

// ---- joinall / killall ------------------------------------------------------------------

namespace {

// joinall of every task without raise_error: waits on each in turn. When they finish in random
// order that wakes the caller about ln(n) times, where iwait wakes it once per task: a 100k-task
// joinall costs a tenth as much. What iwait guarantees still holds: it returns after the links
// of the tasks it returns have fired (a group's bookkeeping, say), having gone through the hub
// at least once, and in the order they finished.
std::vector<any_task> join_in_turn(const std::vector<any_task>& tasks, std::optional<duration> timeout) {
    check_timeout(timeout, "joinall");
    const std::uint64_t finished_before = this_hub().finished_tasks;
    const std::int64_t deadline = timeout ? now_ns() + timeout->ns.count() : 0;
    auto done_now = [](const task_core& core) { return core.ready() && !core.notifying(); };
    // Those done before the call come first, in the order given; then by when they finished.
    auto key = [&](const task_core& core) {
        const std::uint64_t f = core.finish_order();
        return f > finished_before ? f : 0;
    };
    // One pass, taking each task's handle and key while its memory is at hand (with 100k tasks
    // a second pass missed the cache again on every one), then one sort of contiguous records
    // by (key, position): the position breaks ties, so the order is stable, and moving a handle
    // does not touch its task.
    struct finished {
        std::uint64_t key;
        std::size_t position;
        any_task task;
        bool operator<(const finished& o) const noexcept {
            return key < o.key || (key == o.key && position < o.position);
        }
    };
    std::vector<finished> done;
    done.reserve(tasks.size());
    bool waited = false;
    std::size_t i = 0;
    for (; i < tasks.size(); ++i) {
        task_core& core = tasks[i].core();
        if (!done_now(core)) {
            std::optional<duration> left;
            if (timeout) left = std::chrono::nanoseconds(std::max<std::int64_t>(deadline - now_ns(), 0));
            waited = true;
            link_waiter lw;  // fires after the links already there
            lw.w.what = "joinall";
            core.rawlink(lw);
            if (!block(lw.w, left)) break;
        }
        done.push_back({key(core), i, tasks[i]});
    }
    for (; i < tasks.size(); ++i)  // timed out: the rest that are done anyway
        if (const task_core& core = tasks[i].core(); done_now(core)) done.push_back({key(core), i, tasks[i]});
    if (!waited && !tasks.empty()) green::sleep();  // iwait's trip through the hub
    if (!std::is_sorted(done.begin(), done.end())) std::sort(done.begin(), done.end());
    std::vector<any_task> result;
    result.reserve(done.size());
    for (auto& d : done) result.push_back(std::move(d.task));
    return result;
}

}  // namespace

std::vector<any_task> joinall(const std::vector<any_task>& tasks, join_options options) {
    if (!options.raise_error && (!options.count || *options.count >= tasks.size()))
        return join_in_turn(tasks, options.timeout);
    std::vector<waitable> objects(tasks.begin(), tasks.end());
    std::vector<any_task> done;
    const std::size_t limit = options.count ? std::min(*options.count, tasks.size()) : tasks.size();
    if (limit == 0) return done;
    iwait_range range(std::move(objects), {.timeout = options.timeout});
    for (auto it = range.begin(); it != range.end(); ++it) {
        const any_task& t = tasks[range.current_index()];
        done.push_back(t);
        if (options.raise_error && !t.successful()) std::rethrow_exception(t.exception());
        if (done.size() >= limit) break;
    }
    return done;
}

void killall(const std::vector<any_task>& tasks, killall_options options) {
    killall(tasks, std::make_exception_ptr(greenlet_exit()), options);
}

void killall(const std::vector<any_task>& tasks, std::exception_ptr exception, killall_options options) {
    check_timeout(options.timeout, "killall");
    for (const any_task& t : tasks) t.core().kill(exception, false, std::nullopt);
    if (!options.block) return;
    auto left = joinall(tasks, {.timeout = options.timeout});
    if (options.timeout && left.size() < tasks.size()) throw timeout_error(0, *options.timeout);
}

}  // namespace green
