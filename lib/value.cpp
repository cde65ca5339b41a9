// Printing and checking for green::value: Python-style repr and the type errors.
#include <green/value.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cxxabi.h>
#include <limits>
#include <memory>

namespace green {
namespace detail {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
}

template <class T>
bool fits(const number& n, T* out) {
    using limits = std::numeric_limits<T>;
    switch (n.k) {
        case number::kind::floating:
            if constexpr (std::is_floating_point_v<T>) {
                *out = static_cast<T>(n.f);
                return true;
            }
            return false;  // as in Python, a float is not silently truncated to an int
        case number::kind::signed_integer:
            if constexpr (std::is_floating_point_v<T>) {
                *out = static_cast<T>(n.i);
                return true;
            } else if constexpr (std::is_signed_v<T>) {
                if (n.i < limits::min() || n.i > limits::max()) return false;
            } else {
                if (n.i < 0 || static_cast<unsigned long long>(n.i) > limits::max()) return false;
            }
            *out = static_cast<T>(n.i);
            return true;
        case number::kind::unsigned_integer:
            if constexpr (!std::is_floating_point_v<T>) {
                if (n.u > static_cast<unsigned long long>(limits::max())) return false;
            }
            *out = static_cast<T>(n.u);
            return true;
    }
    return false;
}

template <class... Ts>
bool convert_to_any(const number& n, const std::type_info& to, void* out) {
    bool done = false;
    bool ok = false;
    ((!done && to == typeid(Ts) ? (done = true, ok = fits(n, static_cast<Ts*>(out))) : false), ...);
    return ok;
}

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

}  // namespace

std::string type_name(const std::type_info& type) {
    std::string name = demangle(type.name());
    replace_all(name, "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string");
    replace_all(name, "std::__cxx11::", "std::");
    replace_all(name, "(anonymous namespace)::", "");
    replace_all(name, " >", ">");
    return name;
}

std::string type_name_of(const std::exception_ptr& e) {
    if (!e) return "None";
    const std::type_info* type = e.__cxa_exception_type();
    return type ? type_name(*type) : std::string("unknown exception");
}

bool convert_number(const number& from, const std::type_info& to, void* out) noexcept {
    return convert_to_any<char, signed char, unsigned char, short, unsigned short, int, unsigned, long, unsigned long,
                          long long, unsigned long long, float, double, long double>(from, to, out);
}

void repr_string(std::ostream& os, std::string_view s) {
    // Python picks double quotes only when that avoids escaping a single quote.
    const char quote = s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos ? '"' : '\'';
    static constexpr char hex[] = "0123456789abcdef";
    os << quote;
    for (unsigned char c : s) {
        switch (c) {
            case '\\': os << "\\\\"; break;
            case '\n': os << "\\n"; break;
            case '\r': os << "\\r"; break;
            case '\t': os << "\\t"; break;
            default:
                if (c == static_cast<unsigned char>(quote))
                    os << '\\' << quote;
                else if (c < 0x20 || c == 0x7f)
                    os << "\\x" << hex[c >> 4] << hex[c & 15];
                else
                    os << static_cast<char>(c);
        }
    }
    os << quote;
}

void repr_float(std::ostream& os, double x) {
    if (std::isnan(x)) {
        os << "nan";
        return;
    }
    if (std::isinf(x)) {
        os << (x < 0 ? "-inf" : "inf");
        return;
    }
    // Python's repr: the shortest round-trip digits, fixed notation for exponents in
    // [-4, 16), scientific otherwise, and always a ".0" on integral fixed values.
    char buf[64];
    auto sci = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
    std::string_view s(buf, sci.ptr - buf);
    const int exponent = std::atoi(s.data() + s.find('e') + 1);
    if (exponent >= -4 && exponent < 16) {
        auto fixed = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed);
        std::string_view f(buf, fixed.ptr - buf);
        os << f;
        if (f.find('.') == std::string_view::npos) os << ".0";
    } else {
        os << s;
    }
}

void repr_exception_object(std::ostream& os, const std::type_info& type, const char* message) {
    std::string name = type_name(type);
    if (name == "green::greenlet_exit") name = "GreenletExit";
    os << name << '(';
    if (message && *message) repr_string(os, message);
    os << ')';
}

void repr_exception(std::ostream& os, const std::exception_ptr& e) {
    if (!e) {
        os << "None";
        return;
    }
    try {
        std::rethrow_exception(e);
    } catch (const greenlet_exit& x) {
        repr_exception_object(os, typeid(x), x.what());
    } catch (const std::exception& x) {
        repr_exception_object(os, typeid(x), x.what());
    } catch (...) {
        const std::type_info* type = abi::__cxa_current_exception_type();
        repr_exception_object(os, type ? *type : typeid(void), nullptr);
    }
}

void repr_unknown(std::ostream& os, const std::type_info& type) { os << "<value of type " << type_name(type) << '>'; }

void throw_type_error(const std::string& message) { throw type_error(message); }

void throw_wrong_count(std::size_t expected, const value& got) {
    std::string message = "green::value: expected " + std::to_string(expected) + (expected == 1 ? " value" : " values");
    if (got.empty()) {
        message += ", got none";
    } else if (got.size() == 1) {
        message += ", got 1 value of type " + type_name(got.type());
    } else {
        message += ", got " + std::to_string(got.size()) + " values of types " + type_name(got.type());
    }
    throw type_error(message);
}

void throw_wrong_type(const std::type_info& expected, const std::type_info& got) {
    throw type_error("green::value: expected a value of type " + type_name(expected) + ", got " + type_name(got));
}

void throw_not_copyable(const std::type_info& type) {
    throw type_error("green::value: a value of type " + type_name(type) + " cannot be copied (move it instead)");
}

}  // namespace detail

std::string repr(const value& v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

}  // namespace green
