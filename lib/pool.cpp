// Groups and pools (green/pool.hpp): membership through links on the tasks, join, kill.
#include <green/pool.hpp>
#include <green/timeout.hpp>

#include <algorithm>
#include <string>

namespace green {

// A member's link on its task: fires in the hub when the task is done, and removes it.
struct group::member : detail::link {
    struct order_node : detail::list_node {
        member* self = nullptr;
    };
    member(group* g, const any_task& t) : owner(g), task(t) {
        fire = [](detail::link& l) {
            auto& m = static_cast<member&>(l);
            m.owner->remove(m);
        };
        in_order.self = this;
    }
    group* owner;
    any_task task;
    bool dying = false;  // the group killed it
    order_node in_order;
};

group::group() { empty_.set(); }

group::~group() { shutdown(); }

void group::shutdown() noexcept {
    try {
        if (waiting_for_slot_) waiting_for_slot_->kill();
        if (!members_.empty()) kill();
    } catch (...) {
        // In the hub, or while the thread's hub shuts down: the members cannot be waited for.
        // Their links go with them, so they just run on untracked.
    }
}

bool group::acquire_slot(std::optional<duration> timeout) {
    detail::check_timeout(timeout, "group::add");
    return true;
}

void group::add(const any_task& t, std::optional<duration> timeout) {
    detail::check_timeout(timeout, "group::add");
    if (contains(t)) return;
    if (!acquire_slot(timeout))
        throw pool_full(detail::is_zero(timeout) ? "pool::add: no free slot" : "pool::add: no free slot within the timeout");
    if (contains(t)) {  // added by another greenlet while this one waited for the slot
        release_slot();
        return;
    }
    try {
        add_member(t);
    } catch (...) {
        release_slot();
        throw;
    }
}

void group::add_member(const any_task& t) {
    auto m = std::make_unique<member>(this, t);
    member& ref = *m;
    members_.emplace(&t.core(), std::move(m));
    order_.push_back(ref.in_order);
    ++changes_;
    empty_.clear();
    t.core().rawlink(ref);
}

void group::discard(const any_task& t) {
    auto it = members_.find(&t.core());
    if (it != members_.end()) remove(*it->second);
}

// gevent's Pool._discard: the group may be empty now, then the slot is freed.
void group::remove(member& m) noexcept {
    members_.erase(&m.task.core());  // destroys m, which unlinks itself from the task and the order
    ++changes_;
    if (members_.empty()) empty_.set();
    release_slot();
}

std::vector<any_task> group::tasks() const {
    std::vector<any_task> out;
    out.reserve(members_.size());
    order_.for_each([&](detail::list_node* n) { out.push_back(static_cast<member::order_node*>(n)->self->task); });
    return out;
}

bool group::join(const group_join_options& options) {
    detail::check_timeout(options.timeout, "group::join");
    std::vector<any_task> members;
    if (options.raise_error) members = tasks();
    const bool emptied = detail::wait_ready(empty_, options.timeout, "group::join");
    for (const any_task& t : members)
        if (std::exception_ptr e = t.exception()) std::rethrow_exception(e);
    return emptied;
}

void group::kill(kill_options options) { kill(std::make_exception_ptr(greenlet_exit()), options); }

void group::kill(std::exception_ptr exception, kill_options options) {
    detail::check_timeout(options.timeout, "group::kill");
    std::optional<timeout> limit;
    if (options.block && options.timeout) limit.emplace(*options.timeout);
    try {
        while (!members_.empty()) {
            for (const any_task& t : tasks()) {
                auto it = members_.find(&t.core());
                if (it == members_.end() || it->second->dying) continue;
                it->second->dying = true;
                t.kill(exception, {.block = false});
            }
            if (!options.block) break;
            joinall(tasks());
        }
    } catch (const timeout_error& e) {
        if (!limit || !e.is(*limit)) throw;
    }
}

void group::killone(const any_task& t, kill_options options) {
    killone(t, std::make_exception_ptr(greenlet_exit()), options);
}

void group::killone(const any_task& t, std::exception_ptr exception, kill_options options) {
    detail::check_timeout(options.timeout, "group::killone");
    auto it = members_.find(&t.core());
    if (it == members_.end() || it->second->dying) return;
    it->second->dying = true;
    t.kill(std::move(exception), {.block = false});
    if (options.block) t.join(options.timeout);
}

// ---- iteration --------------------------------------------------------------------------

group::iterator::iterator(const group* g, detail::list_node* node)
    : group_(g), node_(node), left_(g->members_.size()), changes_(g->changes_) {}

void group::iterator::check() const {
    if (group_->changes_ != changes_)
        throw error("group: a member joined or left during the iteration (iterate over tasks() to wait in the loop)");
}

const any_task& group::iterator::operator*() const {
    check();
    return static_cast<member::order_node*>(node_)->self->task;
}

group::iterator& group::iterator::operator++() {
    check();
    node_ = node_->next;
    --left_;
    return *this;
}

group::iterator group::begin() const { return iterator(this, order_.front()); }

// ---- pool -------------------------------------------------------------------------------

pool::pool(std::optional<int> size) : size_(size) {
    if (size && *size < 0) throw error("pool: the size must not be negative, not " + std::to_string(*size));
    if (size) slots_.emplace(*size);
}

pool::~pool() { shutdown(); }

int pool::free_count() const noexcept {
    if (!size_) return 1;
    return std::max(0, *size_ - static_cast<int>(size()));
}

int pool::wait_available(std::optional<duration> timeout) {
    detail::check_timeout(timeout, "pool::wait_available");
    return slots_ ? slots_->wait(timeout) : 1;
}

bool pool::acquire_slot(std::optional<duration> timeout) {
    if (!slots_) return group::acquire_slot(timeout);
    // A pool whose members all spawn into it is a classic deadlock (gevent #368): loop_exit
    // then says that they wait for a slot.
    return slots_->acquire_as(timeout, "pool (for a free slot)");
}

void pool::release_slot() noexcept {
    if (slots_) slots_->release();
}

namespace detail {

void kill_unfinished(const std::vector<any_task>& tasks) noexcept {
    std::vector<any_task> running;
    for (const any_task& t : tasks)
        if (!t.ready()) running.push_back(t);
    if (running.empty()) return;
    try {
        killall(running);
    } catch (...) {
    }
}

}  // namespace detail

}  // namespace green
