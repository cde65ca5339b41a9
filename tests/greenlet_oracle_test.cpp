// The greenlet oracle cases (tests/oracle/greenlet/caseNN_*.py), ported to C++: each test
// prints the same trace as the Python program and compares it with the recorded output.
//
// Python exceptions map to C++ ones as docs/greenlet.md describes: greenlet.error, ValueError
// and AttributeError raised by the greenlet machinery are green::error (with the same message
// where Python's is meaningful), TypeError from a run/argument mismatch is green::type_error,
// GreenletExit is green::greenlet_exit. The programs' own exceptions (ValueError, KeyError, ...)
// are small std::runtime_error subclasses of the same names, so that they print alike.
//
// Not ported: case06 (keyword arguments: C++ has none), case45 (a crash-prone quirk of
// greenlet 2.0.2 that green deliberately does not copy; greenlet_test.cpp pins what green does
// instead). Partly ported cases say in their test what is left out and why.
#include "oracle.hpp"

#include <green/greenlet.hpp>

#include <condition_variable>
#include <cstdio>
#include <fcntl.h>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unistd.h>
#include <unordered_set>

using green::getcurrent;
using green::greenlet;
using green::repr;
using green::value;

namespace {

#define PY_EXCEPTION(Name)                     \
    struct Name : std::runtime_error {         \
        Name() : std::runtime_error("") {}     \
        explicit Name(const std::string& m) : std::runtime_error(m) {} \
    }
PY_EXCEPTION(ValueError);
PY_EXCEPTION(RuntimeError);
PY_EXCEPTION(KeyError);
PY_EXCEPTION(IndexError);
PY_EXCEPTION(ZeroDivisionError);

// Python's try/finally.
struct finally {
    std::function<void()> f;
    ~finally() { f(); }
};

// The Python tests' fmt(): an exception instance as <Name: message>, anything else as repr.
std::string fmt(const value& v) {
    if (v.holds<green::greenlet_exit>()) {
        try {
            std::rethrow_exception(v.get<std::exception_ptr>());
        } catch (const green::greenlet_exit& e) {
            std::string name = green::detail::type_name(typeid(e));
            if (name == "green::greenlet_exit") name = "GreenletExit";
            return *e.what() ? "<" + name + ": " + e.what() + ">" : "<" + name + ">";
        }
    }
    return repr(v);
}

// Python's repr(args) for a run(*args): the arguments as a tuple.
std::string args_repr(const value& v) { return v.size() == 1 ? "(" + repr(v) + ",)" : repr(v); }

bool is(const value& v, const std::string& s) { return v.holds<std::string>() && v.get<std::string>() == s; }

}  // namespace

TEST_CASE("case01_classic_func1_func2") {
    oracle::trace say;
    greenlet gr1, gr2;
    gr1.set_run([&] {
        say(1);
        gr2.switch_to();
        say(2);
        gr2.switch_to();
        say("func1 end (never printed: gr2 finishes first and returns to main)");
    });
    gr2.set_run([&] {
        say(3);
        gr1.switch_to();
        say(4);
    });
    value r = gr1.switch_to();
    say("main got", repr(r));
    say("gr1.dead", gr1.dead(), "gr2.dead", gr2.dead());
    say("bool(gr1)", bool(gr1), "bool(gr2)", bool(gr2));
    oracle::compare(say, "greenlet", "case01_classic_func1_func2");
}

TEST_CASE("case02_eat_play") {
    oracle::trace say;
    greenlet g1, g2;
    g1.set_run([&](std::string name) {
        say(name + " eat 1");
        value got = g2.switch_to("egon");
        say(name + " eat 2 (got " + repr(got) + ")");
        got = g2.switch_to();
        say(name + " eat 3 (got " + repr(got) + ")");
        return std::string("eat done");
    });
    g2.set_run([&](std::string name) {
        say(name + " play 1");
        value got = g1.switch_to();
        say(name + " play 2 (got " + repr(got) + ")");
        return std::string("play done");
    });
    value r = g1.switch_to("alex");
    say("main got", repr(r));
    say("g1.dead", g1.dead(), "g2.dead", g2.dead());
    oracle::compare(say, "greenlet", "case02_eat_play");
}

TEST_CASE("case03_docs_test1_test2") {
    oracle::trace say;
    greenlet gr1, gr2;
    gr1.set_run([&] {
        say("[gr1] main  -> test1");
        gr2.switch_to();
        say("[gr1] test1 <- test2");
        return std::string("test1 done");
    });
    gr2.set_run([&] {
        say("[gr2] test1 -> test2");
        gr1.switch_to();
        say("This is never printed.");
    });
    say("main got", repr(gr1.switch_to()));
    say("gr1.dead", gr1.dead(), "bool(gr1)", bool(gr1));
    say("gr2.dead", gr2.dead(), "bool(gr2)", bool(gr2));
    oracle::compare(say, "greenlet", "case03_docs_test1_test2");
}

TEST_CASE("case04_first_switch_args") {
    oracle::trace say;
    greenlet gr1, gr2;
    gr1.set_run([&](std::string x, std::string y) {
        say("test1 start", repr(x), repr(y));
        value z = gr2.switch_to(x + y);
        say("test1 got", repr(z));
        return std::string("test1 ret");
    });
    gr2.set_run([&](std::string u) {
        say("test2 start", repr(u));
        value r = gr1.switch_to(42);
        say("test2 resumed (never printed)", repr(r));
    });
    value r = gr1.switch_to("hello", " world");
    say("main got", repr(r));
    say("gr1.dead", gr1.dead(), "gr2.dead", gr2.dead());

    auto show = [&](value args) {
        say("run args", args_repr(args));
        return args.size();
    };
    say("main got", repr(greenlet(show).switch_to()));
    say("main got", repr(greenlet(show).switch_to(7)));
    say("main got", repr(greenlet(show).switch_to(1, 2, 3)));
    say("main got", repr(greenlet(show).switch_to(std::tuple{1, 2})));
    oracle::compare(say, "greenlet", "case04_first_switch_args");
}

TEST_CASE("case05_switch_packing_positional") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet g([&] {
        for (;;) {
            value v = main.switch_to("ready");
            say("receiver got", repr(v));
            if (is(v, "stop")) return std::string("receiver done");
        }
    });
    say("main got", repr(g.switch_to()));
    g.switch_to();
    g.switch_to(1);
    g.switch_to(1, 2);
    g.switch_to(1, 2, 3);
    g.switch_to(std::tuple{1});
    g.switch_to(std::tuple<>{});
    g.switch_to(std::tuple{1, 2});
    g.switch_to(green::none);
    g.switch_to("s");
    say("main got", repr(g.switch_to("stop")));

    greenlet s([&] {
        main.switch_to();
        main.switch_to(5);
        main.switch_to(5, 6);
        main.switch_to(std::tuple{5});
        return std::tuple{9};
    });
    for (int i = 0; i < 5; ++i) say("main got", repr(s.switch_to()));
    say("s.dead", s.dead());
    oracle::compare(say, "greenlet", "case05_switch_packing_positional");
}

TEST_CASE("case07_return_to_pending_switch") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet a, b;
    a.set_run([&] {
        say("A start");
        value r = b.switch_to("from A");
        say("A resumed with", repr(r));
        return std::string("A done");
    });
    b.set_run([&](std::string x) {
        say("B start", repr(x));
        return 5;
    });
    say("b.parent is main", *b.parent() == main);
    value r = a.switch_to();
    say("main got", repr(r));
    say("a.dead", a.dead(), "bool(a)", bool(a), "b.dead", b.dead());
    r = a.switch_to("resume A");
    say("main got", repr(r));
    say("a.dead", a.dead());
    oracle::compare(say, "greenlet", "case07_return_to_pending_switch");
}

TEST_CASE("case08_return_values_exact") {
    oracle::trace say;
    for (const value& v : {value::of(green::none), value::of(std::tuple<>{}), value::of(std::tuple{1}),
                           value::of(std::tuple{1, 2}), value::of(7), value::of("s"),
                           value::of(std::make_tuple(std::tuple{1, 2}))}) {
        greenlet g([v] { return v; });
        value r = g.switch_to();
        say("returned", repr(v), "-> parent got", repr(r), "dead", g.dead());
    }
    oracle::compare(say, "greenlet", "case08_return_values_exact");
}

TEST_CASE("case09_switch_to_dead") {
    oracle::trace say;
    auto inner = [&] {
        say("Entering inner.");
        say("Returning from inner.");
        return 42;
    };
    greenlet outer_glet([&] {
        say("Entering outer and spawning inner.");
        greenlet inner_glet(inner);
        say("Switching to inner.");
        value result = inner_glet.switch_to();
        say("Got from inner value: " + repr(result));
        say("Switching to inner again.");
        result = inner_glet.switch_to();
        say("Got from inner value: " + repr(result));
        result = inner_glet.switch_to(1, 2);
        say("Got from inner value: " + repr(result));
        return inner_glet;
    });
    greenlet inner_glet = outer_glet.switch_to().get<greenlet>();
    say("outer dead", outer_glet.dead(), "inner dead", inner_glet.dead());
    say("main: dead inner.switch() ->", repr(inner_glet.switch_to()));
    say("main: dead inner.switch(5) ->", repr(inner_glet.switch_to(5)));
    say("main: dead inner.switch(5, 6) ->", repr(inner_glet.switch_to(5, 6)));
    say("main: dead outer.switch('x') ->", repr(outer_glet.switch_to("x")));
    oracle::compare(say, "greenlet", "case09_switch_to_dead");
}

TEST_CASE("case11_dead_chain_walk") {
    oracle::trace say;
    greenlet main = getcurrent();
    std::map<std::string, greenlet> glets;
    auto C_run = [&] {
        say("C start");
        value v = main.switch_to("C parked");
        say("C resumed with", repr(v));
        return std::string("C result");
    };
    auto B_run = [&] {
        say("B start");
        glets.emplace("C", greenlet(C_run));
        value v = glets.at("C").switch_to();
        say("B got", repr(v));
        return std::string("B result");
    };
    greenlet A([&] {
        say("A start");
        glets.emplace("B", greenlet(B_run));
        value v = glets.at("B").switch_to();
        say("A got", repr(v));
        return std::string("A result");
    });
    say("main got", repr(A.switch_to()));
    greenlet B = glets.at("B"), C = glets.at("C");
    say("parents ok", *C.parent() == B, *B.parent() == A, *A.parent() == main);
    say("main got", repr(B.switch_to("to B")));
    say("dead A B C:", A.dead(), B.dead(), C.dead());
    say("main got", repr(C.switch_to("to C")));
    say("dead A B C:", A.dead(), B.dead(), C.dead());
    say("main: dead C.switch(1, 2) ->", repr(C.switch_to(1, 2)));
    oracle::compare(say, "greenlet", "case11_dead_chain_walk");
}

TEST_CASE("case12_unstarted_parent_started_by_child") {
    oracle::trace say;
    auto one_arg = [&](value x) {
        say("parent started with", repr(x));
        return value::of(std::string("parent"), x);
    };
    for (const value& v : {value::of(42), value::of(std::tuple{1, 2}), value::of(green::none)}) {
        greenlet parent(one_arg);
        greenlet child([v] { return v; }, parent);
        value r = child.switch_to();
        say("main got", repr(r), "child.dead", child.dead(), "parent.dead", parent.dead());
    }
    greenlet parent([&] {
        say("never printed");
        return 13;
    });
    greenlet child([] { return 42; }, parent);
    try {
        child.switch_to();
    } catch (const green::type_error&) {
        say("main caught TypeError");
    }
    say("child.dead", child.dead(), "parent.dead", parent.dead());
    oracle::compare(say, "greenlet", "case12_unstarted_parent_started_by_child");
}

TEST_CASE("case15_exception_to_parent") {
    oracle::trace say;
    greenlet g([&](int x) {
        say("boom start", x);
        throw ValueError("boom " + std::to_string(x));
    });
    try {
        g.switch_to(1);
    } catch (const ValueError& e) {
        say("main caught ValueError:", e.what());
    }
    say("g.dead", g.dead(), "bool(g)", bool(g));
    say("switch to dead g ->", repr(g.switch_to("after")));
    greenlet h([&] { say("never printed"); });
    try {
        h.switch_to(1, 2);
    } catch (const green::type_error&) {
        say("main caught TypeError");
    }
    say("h.dead", h.dead());
    oracle::compare(say, "greenlet", "case15_exception_to_parent");
}

TEST_CASE("case16_exception_goes_to_parent_not_switcher") {
    oracle::trace say;
    greenlet a, b;
    a.set_run([&] {
        say("A start");
        try {
            value r = b.switch_to();
            say("A resumed with", repr(r));
        } catch (const ValueError&) {
            say("A caught (never printed)");
        }
        return std::string("A done");
    });
    b.set_run([&] {
        say("B start");
        throw ValueError("from B");
    });
    try {
        a.switch_to();
    } catch (const ValueError& e) {
        say("main caught ValueError:", e.what());
    }
    say("a.dead", a.dead(), "bool(a)", bool(a), "b.dead", b.dead());
    say("main got", repr(a.switch_to("resume")));
    oracle::compare(say, "greenlet", "case16_exception_goes_to_parent_not_switcher");
}

TEST_CASE("case17_exception_chain_to_main") {
    oracle::trace say;
    std::function<greenlet(std::string, std::function<greenlet()>)> make = [&](std::string name,
                                                                               std::function<greenlet()> child_factory) {
        return greenlet([&say, name, child_factory] {
            say(name, "start");
            finally f{[&say, name] { say(name, "finally"); }};
            if (!child_factory) throw RuntimeError("boom in " + name);
            greenlet child = child_factory();
            child.switch_to();
            say(name, "after switch (never printed)");
        });
    };
    auto D = [&] { return make("D", nullptr); };
    auto C = [&] { return make("C", D); };
    auto B = [&] { return make("B", C); };
    greenlet A = make("A", B);
    try {
        A.switch_to();
    } catch (const RuntimeError& e) {
        say("main caught RuntimeError:", e.what());
    }
    say("A.dead", A.dead());
    oracle::compare(say, "greenlet", "case17_exception_chain_to_main");
}

TEST_CASE("case19_exception_into_unstarted_parent") {
    oracle::trace say;
    std::vector<int> ran;
    greenlet parent([&](value) {
        ran.push_back(1);
        say("parent run (never printed)");
    });
    greenlet child(
        [&] {
            say("child raising");
            throw ValueError("boom");
        },
        parent);
    try {
        child.switch_to();
    } catch (const ValueError& e) {
        say("main caught ValueError:", e.what());
    }
    say("ran", repr(ran), "child.dead", child.dead(), "parent.dead", parent.dead(), "bool(parent)", bool(parent));

    greenlet main = getcurrent();
    auto f1 = [&] {
        try {
            main.switch_to("f1 ready to catch");
        } catch (const IndexError&) {
            return std::string("caught");
        }
        return std::string("normal exit");
    };
    auto f2 = [&] { main.switch_to("from f2"); };
    {
        greenlet g1(f1);
        greenlet g2(f2, g1);
        try {
            g2.throw_(IndexError());
        } catch (const IndexError&) {
            say("1: main caught IndexError; g1.dead", g1.dead(), "g2.dead", g2.dead());
        }
    }
    {
        greenlet g1(f1);
        greenlet g2(f2, g1);
        say("2: main got", repr(g1.switch_to()));
        value r = g2.throw_(IndexError());
        say("2: main got", repr(r), "g1.dead", g1.dead(), "g2.dead", g2.dead());
    }
    {
        greenlet g1(f1);
        greenlet g2(f2, g1);
        say("3: main got", repr(g1.switch_to()));
        say("3: main got", repr(g2.switch_to()));
        value r = g2.throw_(IndexError());
        say("3: main got", repr(r), "g1.dead", g1.dead(), "g2.dead", g2.dead());
    }
    oracle::compare(say, "greenlet", "case19_exception_into_unstarted_parent");
}

TEST_CASE("case20_throw_unstarted") {
    oracle::trace say;
    std::vector<int> ran;
    auto body = [&](value) { ran.push_back(1); };
    greenlet u(body);
    try {
        u.throw_(ValueError("u"));
    } catch (const ValueError& e) {
        say("main caught ValueError:", e.what());
    }
    say("ran", repr(ran), "dead", u.dead(), "bool", bool(u));
    u = greenlet(body);
    value r = u.throw_();
    say("throw() ->", fmt(r), "ran", repr(ran), "dead", u.dead());
    u = greenlet(body);
    r = u.throw_(green::greenlet_exit("bye"));
    say("throw(GreenletExit('bye')) ->", fmt(r), "ran", repr(ran), "dead", u.dead());
    say("switch to it ->", fmt(u.switch_to(1)));
    oracle::compare(say, "greenlet", "case20_throw_unstarted");
}

TEST_CASE("case21_throw_suspended") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet a([&] {
        try {
            main.switch_to("a ready");
        } catch (const RuntimeError& e) {
            say("a caught RuntimeError:", e.what());
            main.switch_to("a handled");
            say("a resumed");
        }
        return std::string("a end");
    });
    say("main got", fmt(a.switch_to()));
    value r = a.throw_(RuntimeError("ciao"));
    say("(a) throw ->", fmt(r), "dead", a.dead());
    r = a.switch_to();
    say("(a) switch ->", fmt(r), "dead", a.dead());

    greenlet b([&] {
        try {
            main.switch_to("b ready");
        } catch (const KeyError&) {
            return std::string("b caught and returned");
        }
        return std::string();
    });
    b.switch_to();
    r = b.throw_(KeyError());
    say("(b) throw ->", fmt(r), "dead", b.dead());

    auto c_run = [&] {
        finally f{[&] { say("c finally"); }};
        main.switch_to("c ready");
    };
    greenlet c(c_run);
    c.switch_to();
    try {
        c.throw_(ValueError("vv"));
    } catch (const ValueError& e) {
        say("(c) main caught ValueError:", e.what(), "dead", c.dead());
    }
    greenlet d(c_run);
    d.switch_to();
    r = d.throw_();
    say("(d) kill ->", fmt(r), "dead", d.dead());

    greenlet e([&] {
        try {
            main.switch_to("e ready");
        } catch (const green::greenlet_exit& ex) {
            say("e got", fmt(value::of(std::current_exception())));
            (void)ex;
            return std::string("e returned after GreenletExit");
        }
        return std::string();
    });
    e.switch_to();
    r = e.throw_();
    say("(e) kill ->", fmt(r), "dead", e.dead());
    oracle::compare(say, "greenlet", "case21_throw_suspended");
}

namespace {
struct MyExit : green::greenlet_exit {
    using green::greenlet_exit::greenlet_exit;
};
}  // namespace

TEST_CASE("case24_greenletexit_semantics") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet g([&] {
        say("raising GreenletExit('quit')");
        throw green::greenlet_exit("quit");
    });
    // C++ leaves the order of argument evaluation open: each switch is its own statement.
    value r = g.switch_to();
    say("main got", fmt(r), "dead", g.dead());
    g = greenlet([] { throw MyExit("mine"); });
    r = g.switch_to();
    say("main got", fmt(r), "dead", g.dead());
    say("GreenletExit is Exception subclass:", std::is_base_of_v<std::exception, green::greenlet_exit>);

    g = greenlet([&] {
        finally f{[&] { say("broad finally"); }};
        try {
            main.switch_to("broad waiting");
        } catch (const std::exception&) {
            say("except Exception caught it (never printed)");
        }
    });
    g.switch_to();
    r = g.throw_();
    say("kill broad ->", fmt(r), "dead", g.dead());

    g = greenlet([&] {
        int n = 0;
        try {
            for (;;) {
                ++n;
                main.switch_to(n);
            }
        } catch (const green::greenlet_exit&) {
            say("loop exiting after", n);
            return n * 100;
        }
    });
    say("main got", fmt(g.switch_to()));
    say("main got", fmt(g.switch_to()));
    say("main got", fmt(g.switch_to()));
    r = g.throw_();
    say("kill loop ->", fmt(r), "dead", g.dead());
    // Python's BaseException has no C++ counterpart; the "broad" block shows what it means
    // here: catch (const std::exception&) does not stop a kill.
    oracle::compare(say, "greenlet", "case24_greenletexit_semantics", {"GreenletExit is BaseException subclass: True"});
}

TEST_CASE("case25_kill_on_last_reference") {
    oracle::trace say;
    greenlet main = getcurrent();
    auto worker = [&](std::string name) {
        finally f{[&say, name] { say(name, "finally"); }};
        try {
            main.switch_to(name + " ready");
            say(name, "resumed normally (never printed)");
        } catch (const green::greenlet_exit& e) {
            say(name, "got GreenletExit:", e.what());
            say(name, "parent during kill is main:", *getcurrent().parent() == main);
            return std::string("discarded");
        }
        return std::string();
    };
    std::optional<greenlet> g{greenlet(worker)};
    say("main got", repr(g->switch_to("w1")));
    say("deleting w1");
    g.reset();
    say("after del w1");

    std::vector<std::string> ran;
    std::optional<greenlet> u{greenlet([&] { ran.push_back("ran"); })};
    u.reset();
    say("unstarted deleted; ran =", repr(ran));

    std::optional<greenlet> d{greenlet([] { return std::string("x"); })};
    d->switch_to();
    d.reset();
    say("dead deleted");
    oracle::compare(say, "greenlet", "case25_kill_on_last_reference");
}

TEST_CASE("case27_parent_errors") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet g1([] {}), g2([] {}), g3([] {});
    try {
        g1.set_parent(g1);
    } catch (const green::error& e) {
        say("g1.parent = g1 -> ValueError:", e.what());
    }
    g1.set_parent(g2);
    g2.set_parent(g3);
    try {
        g3.set_parent(g1);
    } catch (const green::error& e) {
        say("g3.parent = g1 -> ValueError:", e.what());
    }
    say("g3.parent is still main:", *g3.parent() == main);
    try {
        main.set_parent(g1);
    } catch (const green::error& e) {
        say("main.parent = g1 -> AttributeError:", e.what());
    }
    say("main.parent is None:", !main.parent().has_value());
    say("default parent is creator:", *greenlet([] {}).parent() == main);
    say("nested default parent is creator:", repr(greenlet([] {
                                                   greenlet inner([] {});
                                                   return *inner.parent() == getcurrent();
                                               }).switch_to()));
    // Python-only lines: C++ cannot pass None for a parent (an omitted parent is the current
    // greenlet, checked above), and passing a non-greenlet or deleting the parent does not
    // compile.
    oracle::compare(say, "greenlet", "case27_parent_errors",
                    {"parent=None means current: True", "g1.parent = None -> TypeError", "g1.parent = 1 -> TypeError",
                     "g1.parent = '42' -> TypeError", "del g1.parent -> AttributeError: can't delete attribute",
                     "greenlet(run, 5) -> TypeError"});
}

TEST_CASE("case29_states") {
    oracle::trace say;
    greenlet main = getcurrent();
    auto st = [&](const std::string& name, const greenlet& g) {
        say(name + ": bool=" + (bool(g) ? "True" : "False") + " dead=" + (g.dead() ? "True" : "False") +
            " started=" + (g.started() ? "True" : "False") + " current=" + (g == getcurrent() ? "True" : "False"));
    };
    greenlet g([&] {
        st("running g", getcurrent());
        st("main seen from g", main);
        main.switch_to();
    });
    st("new g", g);
    g.switch_to();
    st("suspended g", g);
    g.switch_to();
    st("finished g", g);
    st("main", main);
    greenlet h([] { throw RuntimeError("x"); });
    try {
        h.switch_to();
    } catch (const RuntimeError&) {
    }
    st("died-by-exception h", h);
    greenlet k([] {});
    k.throw_();
    st("killed-before-start k", k);
    oracle::compare(say, "greenlet", "case29_states");
}

TEST_CASE("case30_gr_frame_and_run_attr (the run-after-start rule)") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet g([&] {
        main.switch_to();
        return std::string("meaning of life");
    });
    g.switch_to();
    say("main got", repr(g.switch_to()));
    try {
        g.set_run([] {});
    } catch (const green::error& e) {
        say("set run after start -> AttributeError:", e.what());
    }
    // Python-only: gr_frame, reading the run attribute, and run as a method of a greenlet
    // subclass (in C++ a class holds a greenlet whose run calls a member function).
    oracle::compare(say, "greenlet", "case30_gr_frame_and_run_attr",
                    {"unstarted gr_frame is None: True run is f1: True", "gr_frame of running self is None: True",
                     "has run while running: False", "suspended gr_frame is the switching frame: True name f1",
                     "main gr_frame while current is None: True", "dead gr_frame is None: True",
                     "g.run after start -> AttributeError", "main.run -> AttributeError",
                     "main got ('subclass run', 5)"});
}

TEST_CASE("case31_getcurrent") {
    oracle::trace say;
    greenlet main = getcurrent();
    say("getcurrent() is getcurrent():", getcurrent() == main);
    say("main.parent is None:", !main.parent().has_value());
    std::vector<greenlet> glets{main};
    std::function<int(int)> level = [&](int n) {
        greenlet me = getcurrent();
        say("level", n, "getcurrent is self:", me == glets[n], "parent is previous:", *me.parent() == glets[n - 1]);
        if (n < 3) {
            glets.push_back(greenlet(level));
            greenlet next = glets[n + 1];
            next.switch_to(n + 1);
        }
        say("level", n, "after child, getcurrent is self:", getcurrent() == me);
        return n;
    };
    glets.push_back(greenlet(level));
    greenlet first = glets[1];
    say("main got", repr(first.switch_to(1)));
    say("back in main:", getcurrent() == main);
    oracle::compare(say, "greenlet", "case31_getcurrent");
}

TEST_CASE("case32_switch_to_self") {
    oracle::trace say;
    greenlet main = getcurrent();
    say("main.switch() ->", repr(main.switch_to()));
    say("main.switch(5) ->", repr(main.switch_to(5)));
    say("main.switch(1, 2) ->", repr(main.switch_to(1, 2)));
    try {
        main.throw_(ValueError("self"));
    } catch (const ValueError& e) {
        say("main.throw(ValueError) on self -> caught ValueError:", e.what());
    }
    try {
        main.throw_();
    } catch (const green::greenlet_exit&) {
        say("main.throw() on self -> caught GreenletExit; main.dead", main.dead());
    }
    greenlet g([&] {
        greenlet me = getcurrent();
        say("g: self.switch('x') ->", repr(me.switch_to("x")));
        try {
            me.throw_(KeyError());
        } catch (const KeyError&) {
            say("g: self.throw(KeyError) -> caught");
        }
        try {
            me.throw_();
        } catch (const green::greenlet_exit&) {
            say("g: self.throw() -> caught GreenletExit; g.dead", me.dead());
        }
        return std::string("g done");
    });
    say("main got", repr(g.switch_to()));
    oracle::compare(say, "greenlet", "case32_switch_to_self");
}

TEST_CASE("case33_main_cannot_die") {
    oracle::trace say;
    greenlet main = getcurrent();
    greenlet t([&] {
        say("thrower: throwing GreenletExit into main");
        main.throw_(green::greenlet_exit("stop main?"));
        say("thrower resumed");
        return std::string("thrower done");
    });
    try {
        t.switch_to();
    } catch (const green::greenlet_exit& e) {
        say("main caught GreenletExit:", e.what());
    }
    say("main.dead", main.dead(), "bool(main)", bool(main), "t.dead", t.dead(), "bool(t)", bool(t));
    say("main got", repr(t.switch_to()));
    try {
        greenlet([&] { main.throw_(ValueError("into main")); }).switch_to();
    } catch (const ValueError& e) {
        say("main caught ValueError:", e.what());
    }
    say("main.dead", main.dead());
    try {
        main.set_parent(greenlet([] {}));
    } catch (const green::error& e) {
        say("cannot re-parent main:", e.what());
    }
    oracle::compare(say, "greenlet", "case33_main_cannot_die");
}

TEST_CASE("case34_threads") {
    oracle::trace say;
    greenlet main = getcurrent();
    std::mutex m;
    std::condition_variable cv;
    bool ready = false, done = false;
    std::optional<greenlet> other_main, unstarted, suspended;
    bool main_is_other = false;
    std::thread t([&] {
        other_main = getcurrent();
        main_is_other = *other_main != main;
        unstarted = greenlet([] {});
        suspended = greenlet([] { getcurrent().parent()->switch_to(); });
        suspended->switch_to();
        std::unique_lock<std::mutex> lock(m);
        ready = true;
        cv.notify_all();
        cv.wait(lock, [&] { return done; });
    });
    {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return ready; });
    }
    auto first_line = [](const std::string& s) { return s.substr(0, s.find('\n')); };
    say("thread has its own main greenlet:", main_is_other, "its parent is None:", !other_main->parent().has_value());
    for (auto [name, g] : {std::pair{"main", &other_main}, {"unstarted", &unstarted}, {"suspended", &suspended}}) {
        try {
            (*g)->switch_to();
        } catch (const green::error& e) {
            say("switch to other thread's", name, "-> greenlet.error:", first_line(e.what()));
        }
    }
    try {
        suspended->throw_(ValueError());
    } catch (const green::error& e) {
        say("throw into other thread's greenlet -> greenlet.error:", first_line(e.what()));
    }
    greenlet x([&] { main.switch_to(); });
    x.switch_to();
    try {
        x.set_parent(*unstarted);
    } catch (const green::error& e) {
        say("started greenlet re-parented to other thread -> ValueError:", e.what());
    }
    greenlet y([] { return 1; });
    y.set_parent(*unstarted);
    say("unstarted greenlet re-parented to other thread: allowed");
    try {
        y.switch_to();
    } catch (const green::error& e) {
        say("switching to it -> greenlet.error:", first_line(e.what()));
    }
    {
        std::lock_guard<std::mutex> lock(m);
        done = true;
        cv.notify_all();
    }
    t.join();
    say("exited thread's main greenlet dead:", other_main->dead());
    try {
        suspended->switch_to();
    } catch (const green::error& e) {
        say("switch to greenlet of exited thread -> greenlet.error:", e.what());
    }
    x.switch_to();
    oracle::compare(say, "greenlet", "case34_threads");
}

TEST_CASE("case35_deep_nesting_and_recursion") {
    oracle::trace say;
    greenlet main = getcurrent();
    std::function<int(int)> chain = [&](int n) {
        if (n == 0) return 0;
        greenlet child(chain);
        return child.switch_to(n - 1).get<int>() + 1;
    };
    say("(a) nested chain 50 ->", greenlet(chain).switch_to(50).get<int>());

    std::function<int(int)> rec = [&](int n) {
        if (n == 0) return main.switch_to("bottom reached").get<int>();
        return rec(n - 1) + 1;
    };
    greenlet g(rec);
    say("(b) main got", repr(g.switch_to(300)));
    say("(b) main got", repr(g.switch_to(1000)));

    // (c) is Python's recursion limit; C++ has none, so 3000 nested greenlets simply work.
    CHECK(greenlet(chain).switch_to(3000).get<int>() == 3000);

    greenlet p([&](int) {
        int count = 0;
        for (;;) {
            ++count;
            value n = main.switch_to(count);
            if (n.holds<green::none_t>()) return count;
        }
    });
    value last;
    for (int i = 0; i < 10000; ++i) last = p.switch_to(i);
    say("(d) last value", repr(last));
    value final = p.switch_to(green::none);
    say("(d) final", repr(final), "dead", p.dead());
    oracle::compare(say, "greenlet", "case35_deep_nesting_and_recursion", {"(c) main caught RecursionError"});
}

namespace {
// Python's Genlet: a greenlet used as a generator. genlet_ids plays isinstance(g, Genlet).
std::unordered_set<std::uint64_t> genlet_ids;

struct genlet {
    greenlet g;
    explicit genlet(std::function<void()> fn) : g([fn] { fn(); }) { genlet_ids.insert(g.id()); }
    // The next yielded value, or nothing once the generator has finished.
    std::optional<value> next() {
        g.set_parent(getcurrent());  // re-parent to whoever consumes
        value result = g.switch_to();
        if (g) return result;
        return std::nullopt;
    }
};

void yield(value v) {
    greenlet g = getcurrent();
    while (!genlet_ids.count(g.id())) g = *g.parent();
    g.parent()->switch_to(std::move(v));
}

void counter(int n) {
    for (int i = 0; i < n; ++i) {
        yield(value::of(i));
        yield(value::of(i * 10));  // Python's nested(i): a yield from a nested call
    }
}
}  // namespace

TEST_CASE("case37_generator_via_greenlets") {
    oracle::trace say;
    auto collect = [](genlet&& gen) {
        std::vector<int> out;
        while (auto v = gen.next()) out.push_back(v->get<int>());
        return out;
    };
    say("gen values", repr(collect(genlet([] { counter(3); }))));
    greenlet consumer([&] { return collect(genlet([] { counter(2); })); });
    say("consumer got", repr(consumer.switch_to()));
    oracle::compare(say, "greenlet", "case37_generator_via_greenlets");
}

TEST_CASE("case39_missing_run_errors") {
    oracle::trace say;
    greenlet g;
    try {
        g.switch_to();
    } catch (const green::error& e) {
        say("switch without run -> AttributeError:", e.what());
    }
    try {
        g.throw_(ValueError());
    } catch (const green::error& e) {
        say("throw without run -> AttributeError:", e.what());
    }
    say("still unstarted: bool", bool(g), "dead", g.dead());
    g.set_run([](int x) { return std::tuple{std::string("late run"), x}; });
    say("main got", repr(g.switch_to(1)));
    greenlet g1;
    greenlet g2([] { return std::string("child result"); }, g1);
    try {
        g2.switch_to();
    } catch (const green::error& e) {
        say("child finished into parent without run -> main caught AttributeError:", e.what());
    }
    say("g2.dead", g2.dead(), "g1 unstarted: bool", bool(g1), "dead", g1.dead());
    // Python's AttributeError says only "run"; green::error says what is missing.
    const std::string what = "run: the greenlet has no run function (set_run gives it one)";
    oracle::compare(
        say, "greenlet", "case39_missing_run_errors", {},
        {{"switch without run -> AttributeError: run", "switch without run -> AttributeError: " + what},
         {"throw without run -> AttributeError: run", "throw without run -> AttributeError: " + what},
         {"child finished into parent without run -> main caught AttributeError: run",
          "child finished into parent without run -> main caught AttributeError: " + what}});
}

TEST_CASE("case42_settrace") {
    oracle::trace say;
    greenlet main = getcurrent();
    std::map<std::uint64_t, std::string> names;
    std::vector<std::string> events;
    greenlet a, b, c;
    a.set_run([&] { b.switch_to(); });
    b.set_run([]() -> int { throw ZeroDivisionError("division by zero"); });
    c.set_run([&] { main.switch_to("c parked"); });
    names = {{main.id(), "main"}, {a.id(), "a"}, {b.id(), "b"}, {c.id(), "c"}};
    auto old = green::settrace([&](std::string_view event, const greenlet& origin, const greenlet& target) {
        events.push_back(std::string(event) + " " + names[origin.id()] + "->" + names[target.id()]);
    });
    try {
        a.switch_to();
    } catch (const ZeroDivisionError&) {
    }
    c.switch_to();
    try {
        c.throw_(KeyError("k"));
    } catch (const KeyError&) {
    }
    green::settrace(old);
    for (const auto& e : events) say(e);
    oracle::compare(say, "greenlet", "case42_settrace");
}

TEST_CASE("case43_exc_info_per_greenlet (std::current_exception is per greenlet)") {
    oracle::trace say;
    auto current_name = []() -> std::string {
        if (!std::current_exception()) return "None";
        try {
            throw;
        } catch (const ValueError&) {
            return "ValueError";
        } catch (...) {
            return "?";
        }
    };
    greenlet f([&] {
        try {
            throw ValueError("fun");
        } catch (const ValueError&) {
            say("f sees", current_name());
            greenlet([&] { say("h sees", current_name()); }).switch_to();
            say("f sees again", current_name());
        }
    });
    f.switch_to();
    oracle::compare(say, "greenlet", "case43_exc_info_per_greenlet");
}

namespace {
// Captures what the library writes to stderr while a block runs.
struct stderr_capture {
    std::FILE* file = std::tmpfile();
    int saved = dup(STDERR_FILENO);
    stderr_capture() {
        std::fflush(stderr);
        dup2(fileno(file), STDERR_FILENO);
    }
    std::string stop() {
        std::fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        std::string text;
        std::rewind(file);
        for (int ch; (ch = std::fgetc(file)) != EOF;) text += static_cast<char>(ch);
        std::fclose(file);
        return text;
    }
};
}  // namespace

TEST_CASE("case44_kill_edge_cases (reports on stderr instead of Python's hooks)") {
    static oracle::trace say;  // the stubborn greenlet outlives this test
    greenlet main = getcurrent();
    std::optional<greenlet> b{greenlet([&] {
        try {
            main.switch_to();
        } catch (const green::greenlet_exit&) {
            say("bad: converting GreenletExit to KeyError");
            throw KeyError("k");
        }
    })};
    b->switch_to();
    stderr_capture capture_bad;
    b.reset();
    std::string reported = capture_bad.stop();
    // Python hands the KeyError to sys.unraisablehook; green reports it on stderr.
    if (reported.find("exception ignored") != std::string::npos && reported.find("KeyError") != std::string::npos)
        say("unraisable: KeyError");
    say("after del bad (no exception in main)");

    static int ignored = 0;
    static greenlet static_main = main;
    std::optional<greenlet> s{greenlet([] {
        for (;;) {
            try {
                static_main.switch_to();
            } catch (const green::greenlet_exit&) {
                // Python's stubborn greenlet ignores every kill; this one gives in to the
                // second, at thread exit, so the test program ends cleanly.
                if (ignored++) throw;
                say("stubborn: ignoring GreenletExit");
            }
        }
    })};
    s->switch_to();
    stderr_capture capture_stubborn;
    s.reset();
    std::string leaked = capture_stubborn.stop();
    say("stderr says 'GreenletExit did not kill':",
        leaked.rfind("green: greenlet_exit did not kill greenlet", 0) == 0);
    oracle::compare(say, "greenlet", "case44_kill_edge_cases");
}
