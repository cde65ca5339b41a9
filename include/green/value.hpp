// green/value.hpp — what travels through a switch.
//
// A green::value holds zero, one or several values, with Python's packing rule:
//
//     g.switch_to()        delivers an empty value            prints ()
//     g.switch_to(5)       delivers one int                   prints 5
//     g.switch_to(5, "x")  delivers two values, int and str   prints (5, 'x')
//
// and reads them back with checked types:
//
//     green::value v = main.switch_to();          // in some greenlet
//     if (v.empty()) ...                          // nothing was passed
//     int n = v.get<int>();                       // exactly one value
//     auto [a, s] = v.get<int, std::string>();    // exactly two
//
// Arguments are stored decayed and by value; string literals, char pointers and string_views
// arrive as std::string, so nothing dangles once the sender moves on. A value of the wrong
// type or count raises green::type_error naming what was expected and what arrived. Numbers
// convert between arithmetic types when the value fits (an int read as long or double).
//
// `os << v` prints like Python's repr(): ints, floats, bools (True/False), strings in quotes,
// tuples ((), (1,), (1, 'x')), std::vector as a list, none / nullopt as None, exceptions as
// Type('message'). Other types print as <value of type T>, unless they provide
//     void green_repr(std::ostream&, const T&);
// found by argument-dependent lookup.
#pragma once

#include <green/error.hpp>

#include <cstddef>
#include <exception>
#include <new>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace green {

// Python's None: what a void run function delivers to its parent.
struct none_t {
    friend constexpr bool operator==(none_t, none_t) noexcept { return true; }
};
inline constexpr none_t none{};

class value;

namespace detail {

struct value_ops;

// One element of a value: its address and how to handle its type.
struct element_ref {
    const void* object;
    const value_ops* ops;
};

// An arithmetic element, widened, for checked conversions between number types.
struct number {
    enum class kind : unsigned char { signed_integer, unsigned_integer, floating };
    kind k;
    long long i;
    unsigned long long u;
    long double f;
};

// The type-erased operations behind a value; one table per stored type.
struct value_ops {
    const std::type_info* type;  // of the stored object (a std::tuple for several values)
    std::size_t count;           // how many values it stands for
    bool heap;                   // the storage holds a pointer to the object
    bool trivial;                // inline and trivially destructible: nothing to destroy
    void (*destroy)(void* storage) noexcept;
    void (*relocate)(void* dst, void* src) noexcept;  // move-construct dst, destroy src
    void (*copy)(void* dst, const void* src);         // nullptr when the type is not copyable
    void (*print)(std::ostream& os, const void* object);
    element_ref (*element)(const void* object, std::size_t index) noexcept;
    bool (*to_number)(const void* object, number& out) noexcept;
};

// A readable name for a type ("int", "std::string", "std::tuple<int, double>").
std::string type_name(const std::type_info& type);
// The dynamic type of the exception e holds ("ValueError", "std::runtime_error").
std::string type_name_of(const std::exception_ptr& e);
template <class T>
std::string type_name() {
    return type_name(typeid(T));
}

void repr_string(std::ostream& os, std::string_view s);
void repr_float(std::ostream& os, double x);
void repr_exception(std::ostream& os, const std::exception_ptr& e);
void repr_exception_object(std::ostream& os, const std::type_info& type, const char* message);
void repr_unknown(std::ostream& os, const std::type_info& type);

[[noreturn]] void throw_type_error(const std::string& message);
[[noreturn]] void throw_wrong_count(std::size_t expected, const value& got);
[[noreturn]] void throw_wrong_type(const std::type_info& expected, const std::type_info& got);
[[noreturn]] void throw_not_copyable(const std::type_info& type);

template <class T>
struct is_tuple_like : std::false_type {};
template <class... Ts>
struct is_tuple_like<std::tuple<Ts...>> : std::true_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};

template <class T>
struct is_std_tuple : std::false_type {};
template <class... Ts>
struct is_std_tuple<std::tuple<Ts...>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
concept has_green_repr = requires(std::ostream& os, const T& x) { green_repr(os, x); };

// Prints x as Python's repr() would.
template <class T>
void repr(std::ostream& os, const T& x) {
    if constexpr (std::is_same_v<T, bool>) {
        os << (x ? "True" : "False");
    } else if constexpr (std::is_same_v<T, char>) {
        repr_string(os, std::string_view(&x, 1));
    } else if constexpr (std::is_integral_v<T>) {
        if constexpr (sizeof(T) == 1)
            os << static_cast<int>(x);
        else
            os << x;
    } else if constexpr (std::is_floating_point_v<T>) {
        repr_float(os, static_cast<double>(x));
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        repr_string(os, std::string_view(x));
    } else if constexpr (std::is_same_v<T, none_t> || std::is_same_v<T, std::nullptr_t> ||
                         std::is_same_v<T, std::nullopt_t>) {
        os << "None";
    } else if constexpr (is_optional<T>::value) {
        if (x)
            repr(os, *x);
        else
            os << "None";
    } else if constexpr (is_tuple_like<T>::value) {
        os << '(';
        std::apply(
            [&os](const auto&... items) {
                std::size_t i = 0;
                ((os << (i++ ? ", " : ""), repr(os, items)), ...);
            },
            x);
        if constexpr (std::tuple_size_v<T> == 1) os << ',';
        os << ')';
    } else if constexpr (is_vector<T>::value) {
        os << '[';
        const char* sep = "";
        for (const auto& item : x) {
            os << sep;
            repr(os, item);
            sep = ", ";
        }
        os << ']';
    } else if constexpr (std::is_same_v<T, std::exception_ptr>) {
        repr_exception(os, x);
    } else if constexpr (std::is_same_v<T, value>) {
        os << x;
    } else if constexpr (std::is_base_of_v<greenlet_exit, T> || std::is_base_of_v<std::exception, T>) {
        repr_exception_object(os, typeid(x), x.what());
    } else if constexpr (has_green_repr<T>) {
        green_repr(os, x);
    } else {
        repr_unknown(os, typeid(T));
    }
}

inline constexpr std::size_t inline_size = 32;
inline constexpr std::size_t inline_align = 16;

template <class T>
inline constexpr bool fits_inline = sizeof(T) <= inline_size && alignof(T) <= inline_align &&
                                    std::is_nothrow_move_constructible_v<T>;

template <class T>
struct storage_of {
    static T* get(void* storage) noexcept {
        if constexpr (fits_inline<T>)
            return std::launder(static_cast<T*>(storage));
        else
            return *static_cast<T**>(storage);
    }
    static const T* get(const void* storage) noexcept { return get(const_cast<void*>(storage)); }

    template <class... A>
    static void emplace(void* storage, A&&... args) {
        if constexpr (fits_inline<T>)
            ::new (storage) T(std::forward<A>(args)...);
        else
            *static_cast<T**>(storage) = new T(std::forward<A>(args)...);
    }
    static void destroy(void* storage) noexcept {
        if constexpr (fits_inline<T>)
            get(storage)->~T();
        else
            delete get(storage);
    }
    static void relocate(void* dst, void* src) noexcept {
        if constexpr (fits_inline<T>) {
            ::new (dst) T(std::move(*get(src)));
            get(src)->~T();
        } else {
            *static_cast<T**>(dst) = get(src);
        }
    }
};

template <class T>
bool to_number(const void* object, number& out) noexcept {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
        const T& x = *static_cast<const T*>(object);
        if constexpr (std::is_floating_point_v<T>) {
            out.k = number::kind::floating;
            out.f = x;
        } else if constexpr (std::is_signed_v<T>) {
            out.k = number::kind::signed_integer;
            out.i = x;
        } else {
            out.k = number::kind::unsigned_integer;
            out.u = x;
        }
        return true;
    } else {
        (void)object;
        (void)out;
        return false;
    }
}

template <class T>
struct single_ops;

template <class T>
element_ref element_of_single(const void* object, std::size_t) noexcept;

template <class T>
struct single_ops {
    static void copy(void* dst, const void* src) {
        if constexpr (std::is_copy_constructible_v<T>)
            storage_of<T>::emplace(dst, *storage_of<T>::get(src));
        else
            throw_not_copyable(typeid(T));
    }
    static void print(std::ostream& os, const void* object) { repr(os, *static_cast<const T*>(object)); }
    static constexpr value_ops table{&typeid(T),
                                     1,
                                     !fits_inline<T>,
                                     fits_inline<T> && std::is_trivially_destructible_v<T>,
                                     &storage_of<T>::destroy,
                                     &storage_of<T>::relocate,
                                     std::is_copy_constructible_v<T> ? &copy : nullptr,
                                     &print,
                                     &element_of_single<T>,
                                     &to_number<T>};
};

template <class T>
element_ref element_of_single(const void* object, std::size_t) noexcept {
    return {object, &single_ops<T>::table};
}

// Several values, stored together as one std::tuple.
template <class... Ts>
struct pack_ops {
    using tuple = std::tuple<Ts...>;
    static void copy(void* dst, const void* src) {
        if constexpr (std::is_copy_constructible_v<tuple>)
            storage_of<tuple>::emplace(dst, *storage_of<tuple>::get(src));
        else
            throw_not_copyable(typeid(tuple));
    }
    static void print(std::ostream& os, const void* object) { repr(os, *static_cast<const tuple*>(object)); }
    template <std::size_t... I>
    static element_ref element_at(const tuple& t, std::size_t index, std::index_sequence<I...>) noexcept {
        element_ref r{nullptr, nullptr};
        ((index == I ? (r = element_ref{&std::get<I>(t), &single_ops<std::tuple_element_t<I, tuple>>::table}, 0)
                     : 0),
         ...);
        return r;
    }
    static element_ref element(const void* object, std::size_t index) noexcept {
        return element_at(*static_cast<const tuple*>(object), index, std::index_sequence_for<Ts...>{});
    }
    static constexpr value_ops table{&typeid(tuple),
                                     sizeof...(Ts),
                                     !fits_inline<tuple>,
                                     fits_inline<tuple> && std::is_trivially_destructible_v<tuple>,
                                     &storage_of<tuple>::destroy,
                                     &storage_of<tuple>::relocate,
                                     std::is_copy_constructible_v<tuple> ? &copy : nullptr,
                                     &print,
                                     &element,
                                     &to_number<tuple>};
};

// What an argument is stored as: decayed, with every kind of string becoming std::string.
template <class T>
using stored_t = std::conditional_t<std::is_same_v<std::decay_t<T>, const char*> ||
                                        std::is_same_v<std::decay_t<T>, char*> ||
                                        std::is_same_v<std::decay_t<T>, std::string_view>,
                                    std::string, std::decay_t<T>>;

bool convert_number(const number& from, const std::type_info& to, void* out) noexcept;

template <class T>
inline constexpr bool is_number_v = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

}  // namespace detail

class value {
public:
    // An empty value: what switch_to() with no arguments delivers. Prints as ().
    value() noexcept = default;

    // Python's packing rule: of() is empty, of(x) holds x, of(a, b, ...) holds several values.
    template <class... Ts>
    static value of(Ts&&... xs) {
        value v;
        if constexpr (sizeof...(Ts) == 1) {
            v.emplace_single<detail::stored_t<Ts>...>(std::forward<Ts>(xs)...);
        } else if constexpr (sizeof...(Ts) > 1) {
            using tuple = std::tuple<detail::stored_t<Ts>...>;
            detail::storage_of<tuple>::emplace(v.storage_, std::forward<Ts>(xs)...);
            v.ops_ = &detail::pack_ops<detail::stored_t<Ts>...>::table;
        }
        return v;
    }

    value(const value& other) {
        if (other.ops_) {
            if (!other.ops_->copy) detail::throw_not_copyable(*other.ops_->type);
            other.ops_->copy(storage_, other.storage_);
            ops_ = other.ops_;
        }
    }
    value(value&& other) noexcept { take(other); }
    value& operator=(const value& other) {
        if (this != &other) {
            value copy(other);
            *this = std::move(copy);
        }
        return *this;
    }
    value& operator=(value&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    ~value() { reset(); }

    // True when nothing was passed.
    bool empty() const noexcept { return ops_ == nullptr; }
    // How many values: 0, 1, or the number of arguments of a multi-argument switch.
    std::size_t size() const noexcept { return ops_ ? ops_->count : 0; }

    // True when this holds exactly one value of type T (for exception types: one exception
    // whose dynamic type is T or derives from T).
    template <class T>
    bool holds() const noexcept {
        if (size() != 1) return false;
        if (*ops_->type == typeid(T)) return true;
        if constexpr (std::is_class_v<T> && !std::is_same_v<T, std::exception_ptr>) {
            if (*ops_->type == typeid(std::exception_ptr)) {
                try {
                    std::rethrow_exception(*static_cast<const std::exception_ptr*>(object()));
                } catch (const T&) {
                    return true;
                } catch (...) {
                }
            }
        }
        return false;
    }

    // The single value, as T; green::type_error if there is not exactly one, or it is not a T.
    template <class T>
    T get() const& {
        return get_one<T>(false);
    }
    template <class T>
    T get() && {
        return get_one<T>(true);
    }
    // Two or more values, as a tuple.
    template <class A, class B, class... R>
    std::tuple<A, B, R...> get() const& {
        return read_all<A, B, R...>(false);
    }
    template <class A, class B, class... R>
    std::tuple<A, B, R...> get() && {
        return read_all<A, B, R...>(true);
    }

    // The type of what is stored: the single value's type, a std::tuple for several values,
    // typeid(void) when empty.
    const std::type_info& type() const noexcept { return ops_ ? *ops_->type : typeid(void); }

    friend std::ostream& operator<<(std::ostream& os, const value& v) {
        if (v.ops_)
            v.ops_->print(os, v.object());
        else
            os << "()";
        return os;
    }

private:
    template <class T, class... A>
    void emplace_single(A&&... args) {
        detail::storage_of<T>::emplace(storage_, std::forward<A>(args)...);
        ops_ = &detail::single_ops<T>::table;
    }

    void reset() noexcept {
        if (ops_) {
            if (!ops_->trivial) ops_->destroy(storage_);
            ops_ = nullptr;
        }
    }

    // Moves other's contents into this empty value.
    void take(value& other) noexcept {
        if (const detail::value_ops* ops = other.ops_) {
            ops->relocate(storage_, other.storage_);
            ops_ = ops;
            other.ops_ = nullptr;
        }
    }

    const void* object() const noexcept {
        return ops_->heap ? *reinterpret_cast<void* const*>(storage_) : static_cast<const void*>(storage_);
    }

    template <class T>
    T get_one(bool move) const {
        if constexpr (detail::is_std_tuple<T>::value) {
            // get<std::tuple<A, B>>() also reads what switch_to(a, b) sent.
            if (size() == std::tuple_size_v<T> && size() != 1) return read_tuple<T>(move);
        }
        return read<T>(single(), move);
    }

    template <class Tuple>
    Tuple read_tuple(bool move) const {
        return [&]<class... Ts>(std::type_identity<std::tuple<Ts...>>) {
            return read_elements<Ts...>(move, std::index_sequence_for<Ts...>{});
        }(std::type_identity<Tuple>{});
    }

    detail::element_ref single() const {
        if (size() != 1) detail::throw_wrong_count(1, *this);
        return ops_->element(object(), 0);
    }

    // Reads one element as T: the exact type, a number that converts, an exception_ptr holding
    // a T, or a tuple read element by element.
    template <class T>
    static T read(detail::element_ref e, bool move) {
        using U = std::remove_cv_t<T>;
        if (*e.ops->type == typeid(U)) {
            auto* p = static_cast<U*>(const_cast<void*>(e.object));
            if constexpr (std::is_move_constructible_v<U>) {
                if (move) return std::move(*p);
            }
            if constexpr (std::is_copy_constructible_v<U>)
                return *p;
            else
                detail::throw_not_copyable(typeid(U));
        }
        if constexpr (detail::is_number_v<U>) {
            detail::number n;
            if (e.ops->to_number(e.object, n)) {
                U out{};
                if (detail::convert_number(n, typeid(U), &out)) return out;
            }
        }
        if constexpr (std::is_class_v<U> && !std::is_same_v<U, std::exception_ptr> &&
                      std::is_copy_constructible_v<U>) {
            if (*e.ops->type == typeid(std::exception_ptr)) {
                try {
                    std::rethrow_exception(*static_cast<const std::exception_ptr*>(e.object));
                } catch (const U& x) {
                    return x;
                } catch (...) {
                }
            }
        }
        detail::throw_wrong_type(typeid(U), *e.ops->type);
    }

    template <class... Ts, std::size_t... I>
    std::tuple<Ts...> read_elements(bool move, std::index_sequence<I...>) const {
        return std::tuple<Ts...>(read<Ts>(ops_->element(object(), I), move)...);
    }

    template <class... Ts>
    std::tuple<Ts...> read_all(bool move) const {
        if (size() == sizeof...(Ts)) return read_elements<Ts...>(move, std::index_sequence_for<Ts...>{});
        // switch_to(std::tuple{a, b}) and switch_to(a, b) look the same to the receiver.
        if (size() == 1 && *ops_->type == typeid(std::tuple<Ts...>)) return read<std::tuple<Ts...>>(single(), move);
        detail::throw_wrong_count(sizeof...(Ts), *this);
    }

    const detail::value_ops* ops_ = nullptr;
    alignas(detail::inline_align) unsigned char storage_[detail::inline_size];
};

// Python's repr() as a string: repr(42) == "42", repr(std::string("x")) == "'x'".
template <class T>
std::string repr(const T& x);

std::string repr(const value& v);

}  // namespace green

template <class T>
std::string green::repr(const T& x) {
    std::ostringstream os;
    detail::repr(os, x);
    return os.str();
}
