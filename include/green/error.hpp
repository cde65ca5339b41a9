// green/error.hpp — the exceptions of the greenlet layer.
//
// green::error is greenlet's `greenlet.error`: misuse of a greenlet (switching into another
// thread's greenlet, a parent cycle, a greenlet without a run function). green::type_error is
// Python's TypeError for values: a run function or a value::get<T>() that does not match what
// was passed. green::greenlet_exit is GreenletExit: it kills a greenlet and, like Python's
// BaseException, it does *not* derive from std::exception, so `catch (const std::exception&)`
// never swallows a kill.
//
//     try {
//         g.switch_to(1, 2);               // g's run takes one int
//     } catch (const green::type_error& e) {
//         std::cerr << e.what() << '\n';   // "run() takes 1 argument but 2 were given"
//     }
//
// The layers above add their own errors (loop_exit, timeout_error, ...) in their headers;
// docs/errors.md lists them all.
#pragma once

#include <stdexcept>
#include <string>

namespace green {

// Misuse of a greenlet or of the library; base of every green exception that is a
// std::exception.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A value or a set of arguments of the wrong type or count.
class type_error : public error {
public:
    using error::error;
};

// Kills a greenlet. Not a std::exception (it is a BaseException in Python). When it escapes a
// greenlet's run, the greenlet dies and the exception *instance* is delivered to the parent as
// a value instead of being raised there. Subclass it to carry more information.
class greenlet_exit {
public:
    greenlet_exit() = default;
    explicit greenlet_exit(std::string message) : message_(std::move(message)) {}
    virtual ~greenlet_exit() = default;

    // The message given at construction, empty by default.
    const char* what() const noexcept { return message_.c_str(); }

private:
    std::string message_;
};

}  // namespace green
