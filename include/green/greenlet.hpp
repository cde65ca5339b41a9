// green/greenlet.hpp — layer 1: greenlets, Python's `greenlet` module in C++.
//
// A greenlet is a function running on its own stack. Any greenlet can switch_to() any other
// greenlet of its thread, passing values; the caller stays suspended until someone switches
// back. Each greenlet has a parent: when its run function returns, the result goes to the
// parent (to the parent's pending switch_to, wherever that was); when run throws, the exception
// is rethrown there. The thread's original stack is its main greenlet.
//
//     #include <green/greenlet.hpp>
//     #include <iostream>
//
//     green::greenlet gr1, gr2;                  // no run function yet (set below)
//
//     int main() {
//         gr1 = green::greenlet([] {
//             std::cout << 1 << '\n';
//             gr2.switch_to();
//             std::cout << 2 << '\n';
//             gr2.switch_to();
//         });
//         gr2 = green::greenlet([] {
//             std::cout << 3 << '\n';
//             gr1.switch_to();
//             std::cout << 4 << '\n';
//         });
//         gr1.switch_to();                        // prints 1 3 2 4, then gr2 returns to main
//     }
//
// Semantics follow greenlet 2.0 exactly (docs/greenlet.md lists each rule and the few places
// where C++ differs): switching to a dead greenlet goes to its nearest live ancestor; a dying
// greenlet starts an unstarted parent; throw_() raises at the target's pending switch;
// green::greenlet_exit kills and comes back as a value; dropping the last handle to a suspended
// greenlet kills it, so its stack always unwinds.
#pragma once

#include <green/detail/switch.hpp>
#include <green/error.hpp>
#include <green/stack.hpp>
#include <green/value.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace green {

class greenlet;

namespace detail {

// A greenlet's run function, type-erased.
struct run_base {
    virtual value invoke(value&& args) = 0;
    virtual ~run_base() = default;
};

template <class F>
struct callable_traits : callable_traits<decltype(&F::operator())> {};
template <class R, class... A>
struct callable_traits<R (*)(A...)> {
    using result = R;
    using params = std::tuple<A...>;
};
template <class R, class... A>
struct callable_traits<R (*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...)> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) noexcept> : callable_traits<R (*)(A...)> {};
template <class C, class R, class... A>
struct callable_traits<R (C::*)(A...) const noexcept> : callable_traits<R (*)(A...)> {};

template <class F>
concept has_fixed_signature = std::is_pointer_v<F> || requires { &F::operator(); };

[[noreturn]] void throw_run_arity(std::size_t expected, std::size_t given);

template <class R>
value wrap_result(auto&& call) {
    if constexpr (std::is_void_v<R>) {
        call();
        return value::of(none);
    } else if constexpr (std::is_same_v<std::decay_t<R>, value>) {
        return call();
    } else {
        return value::of(call());
    }
}

template <class F, class... P, std::size_t... I>
decltype(auto) call_unpacked(F& f, std::tuple<std::decay_t<P>...>& args, std::index_sequence<I...>) {
    return f(static_cast<P&&>(std::get<I>(args))...);
}

// Calls f with what a switch delivered: f(green::value) takes it whole; otherwise the number
// and types of the values must match f's parameters.
template <class F, class... P>
value invoke_with(F& f, value&& args, std::tuple<P...>*) {
    using R = typename callable_traits<F>::result;
    constexpr std::size_t n = sizeof...(P);
    if constexpr (n == 1 && (std::is_same_v<std::decay_t<P>, value> && ...)) {
        return wrap_result<R>([&]() -> decltype(auto) { return f(std::move(args)); });
    } else {
        if (args.size() != n) throw_run_arity(n, args.size());
        if constexpr (n == 0) {
            return wrap_result<R>([&]() -> decltype(auto) { return f(); });
        } else if constexpr (n == 1) {
            std::tuple<std::decay_t<P>...> unpacked{std::move(args).template get<std::decay_t<P>...>()};
            return wrap_result<R>(
                [&]() -> decltype(auto) { return call_unpacked<F, P...>(f, unpacked, std::index_sequence_for<P...>{}); });
        } else {
            auto unpacked = std::move(args).template get<std::decay_t<P>...>();
            return wrap_result<R>(
                [&]() -> decltype(auto) { return call_unpacked<F, P...>(f, unpacked, std::index_sequence_for<P...>{}); });
        }
    }
}

template <class F>
struct run_holder final : run_base {
    template <class G>
    explicit run_holder(G&& g) : f(std::forward<G>(g)) {}
    value invoke(value&& args) override {
        return invoke_with(f, std::move(args), static_cast<typename callable_traits<F>::params*>(nullptr));
    }
    F f;
};

template <class F>
std::unique_ptr<run_base> make_run(F&& f) {
    using D = std::decay_t<F>;
    static_assert(has_fixed_signature<D>,
                  "a greenlet's run function needs a fixed signature (no auto parameters); "
                  "take a green::value to accept anything");
    return std::make_unique<run_holder<D>>(std::forward<F>(f));
}

// The library side of the API; greenlet's templates call these.
greenlet_core* create(std::unique_ptr<run_base> run, greenlet_core* parent, greenlet_options options);
value throw_to(greenlet_core* target, std::exception_ptr e);
void set_run(greenlet_core* g, std::unique_ptr<run_base> run);
void release(greenlet_core* g) noexcept;
inline void add_ref(greenlet_core* g) noexcept { g->refs.fetch_add(1, std::memory_order_relaxed); }

}  // namespace detail

class greenlet {
public:
    // A greenlet with no run function yet (set_run gives it one before its first switch).
    // Its parent is the current greenlet.
    greenlet();

    // A greenlet that will call run(args...) on its first switch_to(args...). run may take
    // parameters (decayed, by value) or a single green::value, and may return a value or void
    // (the parent then receives green::none). The parent is the current greenlet unless given.
    template <class F>
        requires(!std::is_same_v<std::decay_t<F>, greenlet>)
    explicit greenlet(F&& run, greenlet_options options = {})
        : impl_(detail::create(detail::make_run(std::forward<F>(run)), nullptr, std::move(options))) {}
    template <class F>
    greenlet(F&& run, const greenlet& parent, greenlet_options options = {})
        : impl_(detail::create(detail::make_run(std::forward<F>(run)), parent.impl_, std::move(options))) {}

    greenlet(const greenlet& other) noexcept : impl_(other.impl_) { detail::add_ref(impl_); }
    greenlet(greenlet&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
    greenlet& operator=(const greenlet& other) noexcept {
        greenlet copy(other);
        swap(copy);
        return *this;
    }
    greenlet& operator=(greenlet&& other) noexcept {
        greenlet moved(std::move(other));
        swap(moved);
        return *this;
    }
    // Dropping the last handle to a suspended greenlet throws greenlet_exit into it, right
    // now, so its stack unwinds before the destructor returns.
    ~greenlet() {
        if (impl_) detail::release(impl_);
    }
    void swap(greenlet& other) noexcept { std::swap(impl_, other.impl_); }

    // Transfers control to this greenlet. The first switch calls run(args...); later ones make
    // its pending switch_to return the args. Returns whatever is next passed back to the
    // caller: by a switch_to, as a return value, or as an exception thrown here.
    template <class... A>
    value switch_to(A&&... args) {
        if constexpr (sizeof...(A) == 0)
            return detail::switch_to(impl_);
        else if constexpr (sizeof...(A) == 1 && (std::is_same_v<std::decay_t<A>, value> && ...))
            return detail::switch_to(impl_, value(std::forward<A>(args)...));
        else
            return detail::switch_to(impl_, value::of(std::forward<A>(args)...));
    }

    // Raises an exception in this greenlet, at its pending switch (or before run starts, which
    // then never runs). With no argument it raises greenlet_exit: a kill. Returns, like
    // switch_to, whatever next comes back.
    value throw_() { return throw_(std::make_exception_ptr(greenlet_exit())); }
    value throw_(std::exception_ptr e) { return detail::throw_to(impl_, std::move(e)); }
    template <class E>
        requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
    value throw_(E&& e) {
        return throw_(std::make_exception_ptr(std::forward<E>(e)));
    }

    // The parent; std::nullopt only for a main greenlet.
    std::optional<greenlet> parent() const;
    // green::error on a cycle ("cyclic parent chain"), on a main greenlet, or when a started
    // greenlet is given a parent from another thread.
    void set_parent(const greenlet& parent);

    // Gives a greenlet its run function; green::error once it has started.
    template <class F>
    void set_run(F&& run) {
        detail::set_run(impl_, detail::make_run(std::forward<F>(run)));
    }

    // started: switched to at least once (or killed before starting); dead: started and
    // finished; bool: started and not finished, i.e. running or suspended.
    bool started() const noexcept;
    bool dead() const noexcept;
    explicit operator bool() const noexcept;
    bool is_main() const noexcept;

    // A process-wide number (main greenlets included), and an optional name.
    std::uint64_t id() const noexcept;
    std::string name() const;
    void set_name(std::string name);

    friend bool operator==(const greenlet& a, const greenlet& b) noexcept { return a.impl_ == b.impl_; }
    friend void green_repr(std::ostream& os, const greenlet& g);
    friend std::ostream& operator<<(std::ostream& os, const greenlet& g) {
        green_repr(os, g);
        return os;
    }

    // For the layers above: the implementation object, which lives as long as some handle.
    detail::greenlet_core* native() const noexcept { return impl_; }
    // A handle that takes over one reference the caller already holds.
    static greenlet adopt(detail::greenlet_core* impl) noexcept { return greenlet(impl); }

private:
    explicit greenlet(detail::greenlet_core* impl) noexcept : impl_(impl) {}
    detail::greenlet_core* impl_;
};

// The running greenlet; the thread's main greenlet until it first switches away.
greenlet getcurrent();

// Called on every switch with "switch", or "throw" when the target receives an exception,
// then the origin and the target. Per thread, like greenlet.settrace. An exception thrown by
// the tracer turns tracing off and propagates from the switch that triggered it.
using trace_function = std::function<void(std::string_view event, const greenlet& origin, const greenlet& target)>;
// Installs fn (an empty function turns tracing off) and returns the previous tracer.
trace_function settrace(trace_function fn);
trace_function gettrace();

}  // namespace green

template <>
struct std::hash<green::greenlet> {
    std::size_t operator()(const green::greenlet& g) const noexcept {
        return std::hash<const void*>()(g.native());
    }
};
