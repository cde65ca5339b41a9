// The notifier of the synchronization primitives: see green/detail/wait_list.hpp.
#include <green/detail/wait_list.hpp>

namespace green::detail {

void notifier::run_step(callback& cb) {
    auto& self = static_cast<notifier&>(cb);
    bool alive = true;
    self.alive_ = &alive;
    // Cleared however the step ends (an exception from a woken greenlet reaches the hub).
    struct done {
        notifier& self;
        bool& alive;
        ~done() {
            if (alive) self.alive_ = nullptr;
        }
    } reset{self, alive};
    self.step_(self.owner_, alive);
}

}  // namespace green::detail
