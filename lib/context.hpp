// The context switch: Boost.Context's fcontext, with the AddressSanitizer and ThreadSanitizer
// fiber annotations around every jump. Nothing here knows about greenlet semantics.
//
// Protocol: the running context calls jump(); the target resumes from its own jump() (or
// starts in its entry function) and must call arrived() first thing. A context that will never
// run again (a dying greenlet) jumps with `leaving_forever`, so ASan frees its fake stack.
#pragma once

#include "sanitizers.hpp"

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>

namespace green::detail {

using fcontext_t = boost::context::detail::fcontext_t;
using transfer_t = boost::context::detail::transfer_t;

// What the sanitizers need to know about one execution context (a greenlet or a thread's own
// stack). Empty in a plain build.
struct fiber_annotations {
#if GREEN_ASAN
    void* fake_stack = nullptr;
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
#endif
#if GREEN_TSAN
    void* tsan_fiber = nullptr;
    bool owns_tsan_fiber = false;
#endif

    // A greenlet's own stack [bottom, bottom + size).
    void set_stack(const void* bottom, std::size_t size) noexcept {
#if GREEN_ASAN
        stack_bottom = bottom;
        stack_size = size;
#endif
#if GREEN_TSAN
        if (!tsan_fiber) {
            tsan_fiber = __tsan_create_fiber(0);
            owns_tsan_fiber = true;
        }
#endif
        (void)bottom;
        (void)size;
    }

    // The thread's original stack, for its main greenlet.
    void set_thread_stack(const void* bottom, std::size_t size) noexcept {
#if GREEN_ASAN
        stack_bottom = bottom;
        stack_size = size;
#endif
#if GREEN_TSAN
        tsan_fiber = __tsan_get_current_fiber();
        owns_tsan_fiber = false;
#endif
        (void)bottom;
        (void)size;
    }

    // After the context has finished for good (called from another context).
    void release() noexcept {
#if GREEN_TSAN
        if (owns_tsan_fiber && tsan_fiber) __tsan_destroy_fiber(tsan_fiber);
        tsan_fiber = nullptr;
        owns_tsan_fiber = false;
#endif
#if GREEN_ASAN
        fake_stack = nullptr;
#endif
    }
};

inline fcontext_t make_context(void* top, std::size_t size, void (*entry)(transfer_t)) noexcept {
    return boost::context::detail::make_fcontext(top, size, entry);
}

// Suspends the running context `self` and resumes `target` (whose saved state is `to`),
// handing it `data`. Returns when some context jumps back to `self`.
inline transfer_t jump(fiber_annotations& self, const fiber_annotations& target, fcontext_t to, void* data,
                       bool leaving_forever) noexcept {
#if GREEN_ASAN
    __sanitizer_start_switch_fiber(leaving_forever ? nullptr : &self.fake_stack, target.stack_bottom,
                                   target.stack_size);
#endif
#if GREEN_TSAN
    __tsan_switch_to_fiber(target.tsan_fiber, 0);
#endif
    (void)self;
    (void)target;
    (void)leaving_forever;
    return boost::context::detail::jump_fcontext(to, data);
}

// First thing after a jump lands in `self` (including a context's first start).
inline void arrived(fiber_annotations& self) noexcept {
#if GREEN_ASAN
    __sanitizer_finish_switch_fiber(self.fake_stack, nullptr, nullptr);
#endif
    (void)self;
}

}  // namespace green::detail
