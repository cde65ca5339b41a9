// Timeouts: a timer in the hub that raises an exception in the greenlet that set it.
#include "hub_impl.hpp"

#include <green/timeout.hpp>

#include <atomic>
#include <sstream>

namespace green {

namespace {
std::atomic<std::uint64_t> next_timeout_id{1};

std::string seconds_text(duration d) {
    std::ostringstream out;
    detail::repr_float(out, d.seconds());
    std::string s = out.str();
    // gevent prints str(seconds): 0.05 as "0.05", 1 as "1" when given as an int; green's
    // durations are all floats underneath, so whole seconds drop the ".0".
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s + " seconds";
}
}  // namespace

timeout_error::timeout_error(std::uint64_t source, duration length)
    : source_(source), length_(length), message_(seconds_text(length)) {}

bool timeout_error::is(const timeout& t) const noexcept { return source_ != 0 && source_ == t.id(); }

timeout::timeout(std::optional<duration> length) : timeout(length, std::exception_ptr()) {}

timeout::timeout(std::optional<duration> length, std::exception_ptr exception)
    : length_(length),
      exception_(std::move(exception)),
      target_(getcurrent()),
      id_(next_timeout_id.fetch_add(1, std::memory_order_relaxed)) {
    detail::check_timeout(length, "timeout");
    timer_.owner = this;
    timer_.fire = &fire;
    start();
}

timeout::~timeout() { cancel(); }

void timeout::cancel() noexcept { detail::disarm(timer_); }

void timeout::start() {
    if (!length_) return;
    if (timer_.armed()) throw error("timeout::start: the timeout is already pending (cancel it first)");
    detail::arm(timer_, *length_);
}

void timeout::fire(detail::timer_node& t) {
    timeout* self = static_cast<fire_timer&>(t).owner;
    if (!self->target_ || self->target_.dead()) return;
    std::exception_ptr e = self->exception_ ? self->exception_
                                            : std::make_exception_ptr(timeout_error(self->id_, *self->length_));
    green::greenlet target = self->target_;  // the timeout object may be gone once this returns
    target.throw_(std::move(e));
}

}  // namespace green
