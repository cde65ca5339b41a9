// Name resolution after patch_all(): glibc's resolver does its own I/O through calls the
// hooks never see, so getaddrinfo, getnameinfo, gethostbyname and gethostbyname_r run on
// another thread while the calling greenlet waits in the hub. Numeric addresses are parsed
// in place. Results and errors are libc's.
#include "monkey_support.hpp"

#include <green/timeout.hpp>

#include <cstdlib>
#include <netdb.h>
#include <set>
#include <tuple>
#include <string>
#include <vector>

using namespace monkey_test;

namespace {

// A .invalid name is not in /etc/hosts and goes to DNS, which answers NXDOMAIN (EAI_NONAME,
// HOST_NOT_FOUND). Where no DNS server answers, the resolver says EAI_AGAIN / TRY_AGAIN
// instead, after its timeout, kept short here (glibc reads RES_OPTIONS when a thread first
// resolves).
const char* const unknown_host = "no-such-host.invalid";

void short_resolver_timeouts() { ::setenv("RES_OPTIONS", "timeout:1 attempts:1", 1); }

// The addresses of a getaddrinfo result, as text; frees it.
std::set<std::string> addresses(addrinfo* list) {
    std::set<std::string> out;
    for (addrinfo* a = list; a; a = a->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        const void* raw = a->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                                                  : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
        inet_ntop(a->ai_family, raw, text, sizeof text);
        out.insert(text);
    }
    freeaddrinfo(list);
    return out;
}

struct lookup {
    int rc;
    std::set<std::string> found;
    friend bool operator==(const lookup&, const lookup&) = default;
};

lookup resolve_with(decltype(&::getaddrinfo) function, const char* host, const char* service, int flags = 0) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    addrinfo* list = nullptr;
    const int rc = function(host, service, &hints, &list);
    return {rc, rc == 0 ? addresses(list) : std::set<std::string>{}};
}

}  // namespace

TEST_CASE("getaddrinfo of a name runs off the hub's thread: other greenlets keep running") {
    green::monkey::patch_all();
    REQUIRE(green::monkey::is_patched(green::monkey::patch::dns));
    ticker tick;
    const int before = tick.ticks;
    const lookup hooked = resolve_with(&::getaddrinfo, "localhost", "80");
    CHECK(tick.ticks > before);
    CHECK(hooked.rc == 0);
    CHECK(hooked.found.count("127.0.0.1") == 1);
    CHECK(hooked == resolve_with(LIBC(getaddrinfo), "localhost", "80"));
}

TEST_CASE("getaddrinfo of a numeric address is parsed in place, without a yield") {
    green::monkey::patch_all();
    ticker tick;
    const int before = tick.ticks;
    CHECK(resolve_with(&::getaddrinfo, "127.0.0.1", "80") == lookup{0, {"127.0.0.1"}});
    CHECK(resolve_with(&::getaddrinfo, "::1", "80") == lookup{0, {"::1"}});
    CHECK(tick.ticks == before);
}

TEST_CASE("getaddrinfo's errors and special cases are libc's") {
    green::monkey::patch_all();
    short_resolver_timeouts();
    auto real = LIBC(getaddrinfo);
    const lookup unknown = resolve_with(&::getaddrinfo, unknown_host, "80");
    CHECK(unknown == resolve_with(real, unknown_host, "80"));
    CHECK((unknown.rc == EAI_NONAME || unknown.rc == EAI_AGAIN));
    // No host: the wildcard or loopback address, from the service alone.
    CHECK(resolve_with(&::getaddrinfo, nullptr, "80", AI_PASSIVE) == resolve_with(real, nullptr, "80", AI_PASSIVE));
    CHECK(resolve_with(&::getaddrinfo, nullptr, "80") == resolve_with(real, nullptr, "80"));
    // Neither host nor service.
    CHECK(resolve_with(&::getaddrinfo, nullptr, nullptr) == lookup{EAI_NONAME, {}});
    // A name where only numeric hosts are allowed.
    CHECK(resolve_with(&::getaddrinfo, "localhost", "80", AI_NUMERICHOST) == resolve_with(real, "localhost", "80", AI_NUMERICHOST));
    // A service name.
    CHECK(resolve_with(&::getaddrinfo, "localhost", "http") == resolve_with(real, "localhost", "http"));
}

TEST_CASE("several greenlets resolve at the same time") {
    green::monkey::patch_all();
    std::vector<green::task<lookup>> lookups;
    for (int i = 0; i < 8; ++i) lookups.push_back(green::spawn([] { return resolve_with(&::getaddrinfo, "localhost", "443"); }));
    for (auto& l : lookups) {
        const lookup result = l.get();
        CHECK(result.rc == 0);
        CHECK(result.found.count("127.0.0.1") == 1);
    }
}

TEST_CASE("in the hub greenlet and in a thread without a hub, getaddrinfo is libc's, called in place") {
    green::monkey::patch_all();
    const lookup expected = resolve_with(LIBC(getaddrinfo), "localhost", "80");
    CHECK(in_hub([] { return resolve_with(&::getaddrinfo, "localhost", "80"); }) == expected);
    CHECK(in_thread([] { return resolve_with(&::getaddrinfo, "localhost", "80"); }) == expected);
}

TEST_CASE("getnameinfo runs off the hub's thread, and answers as libc's") {
    green::monkey::patch_all();
    auto real = LIBC(getnameinfo);
    const sockaddr_in addr = loopback(80);
    auto ask = [&](decltype(&::getnameinfo) function, bool want_host, int flags) {
        char host[NI_MAXHOST] = "untouched";
        char serv[NI_MAXSERV] = "untouched";
        const int rc = function(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, want_host ? host : nullptr,
                                want_host ? sizeof host : 0, serv, sizeof serv, flags);
        return std::tuple<int, std::string, std::string>(rc, host, serv);
    };
    ticker tick;
    int before = tick.ticks;
    const auto hooked = ask(&::getnameinfo, true, 0);
    CHECK(tick.ticks > before);
    CHECK(hooked == ask(real, true, 0));
    CHECK(std::get<1>(hooked) == "localhost");
    // Numeric: no lookup, no yield.
    before = tick.ticks;
    CHECK(ask(&::getnameinfo, true, NI_NUMERICHOST | NI_NUMERICSERV) == std::tuple<int, std::string, std::string>(0, "127.0.0.1", "80"));
    CHECK(tick.ticks == before);
    // Only the service asked for.
    CHECK(ask(&::getnameinfo, false, NI_NAMEREQD) == ask(real, false, NI_NAMEREQD));
}

TEST_CASE("gethostbyname and gethostbyname_r run off the hub's thread and answer as libc's") {
    green::monkey::patch_all();
    short_resolver_timeouts();
    ticker tick;
    const int before = tick.ticks;
    const hostent* h = ::gethostbyname("localhost");
    CHECK(tick.ticks > before);
    REQUIRE(h != nullptr);
    CHECK(std::string(h->h_name) == "localhost");
    REQUIRE(h->h_addrtype == AF_INET);
    REQUIRE(h->h_addr_list[0] != nullptr);
    in_addr first;
    std::memcpy(&first, h->h_addr_list[0], sizeof first);
    CHECK(first.s_addr == htonl(INADDR_LOOPBACK));

    h_errno = 0;
    CHECK(::gethostbyname(unknown_host) == nullptr);
    const int hooked_herr = h_errno;
    h_errno = 0;
    CHECK(LIBC(gethostbyname)(unknown_host) == nullptr);
    CHECK(hooked_herr == h_errno);
    CHECK((hooked_herr == HOST_NOT_FOUND || hooked_herr == TRY_AGAIN));

    // gethostbyname_r, with a buffer large enough, and with one too small (ERANGE).
    auto by_r = [](decltype(&::gethostbyname_r) function, std::size_t size) {
        hostent entry{};
        std::vector<char> buffer(size);
        hostent* result = nullptr;
        int herr = 0;
        errno = 0;
        const int rc = function("localhost", &entry, buffer.data(), buffer.size(), &result, &herr);
        const int error = errno;
        const std::string name = result ? result->h_name : "";
        // The entry must point into the caller's buffer, not somewhere else.
        const bool inside = !result || (result->h_name >= buffer.data() && result->h_name < buffer.data() + buffer.size());
        return std::tuple<int, int, int, std::string, bool>(rc, rc ? error : 0, herr, name, inside);
    };
    for (std::size_t size : {std::size_t{4096}, std::size_t{8}}) {
        CAPTURE(size);
        const auto hooked = by_r(&::gethostbyname_r, size);
        CHECK(hooked == by_r(LIBC(gethostbyname_r), size));
        CHECK(std::get<0>(hooked) == (size == 8 ? ERANGE : 0));
    }
}

TEST_CASE("a green::timeout that ends a getaddrinfo early leaks nothing") {
    green::monkey::patch_all();
    for (int i = 0; i < 5; ++i) {
        addrinfo* list = nullptr;
        int rc = -1;
        try {
            green::timeout limit(0s);
            rc = ::getaddrinfo("localhost", "80", nullptr, &list);
        } catch (const green::timeout_error&) {
        }
        if (rc == 0) freeaddrinfo(list);
    }
    // Let the resolver threads finish and drop what they found (LeakSanitizer checks at exit).
    green::sleep(200ms);
}
