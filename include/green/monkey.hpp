// green/monkey.hpp — gevent.monkey: make plain blocking libc calls cooperative.
//
// libgreen defines the libc functions that block — sleep, usleep, nanosleep, clock_nanosleep,
// read, write, readv, writev, recv, recvfrom, recvmsg, send, sendto, sendmsg, connect, accept,
// accept4, poll, select, ppoll, pselect, epoll_wait, epoll_pwait, close — and getaddrinfo,
// getnameinfo, gethostbyname and gethostbyname_r. Because the dynamic linker finds libgreen's
// definitions before libc's, they are what every library in the process calls: unmodified C
// libraries (libcurl, hiredis, libpq) included. Until patch_all() they behave exactly like libc.
// After it, a call made in a greenlet of a thread that has a hub waits in the hub instead of
// blocking the thread:
//
//     #include <green/hub.hpp>
//     #include <green/monkey.hpp>
//     #include <unistd.h>
//
//     int main() {
//         green::monkey::patch_all();                    // first thing, like gevent
//         auto a = green::spawn([] { ::sleep(2); });      // plain libc sleep...
//         auto b = green::spawn([] { ::sleep(1); });
//         green::joinall({a, b});                         // ...cooperative: about 2 s, not 3
//     }
//
// Everywhere else the calls stay libc's, with the same results and errno: before patching, on
// threads without a hub (threadpool workers included), inside the hub itself, on fds the user
// made non-blocking, and on regular files. SO_RCVTIMEO/SO_SNDTIMEO are honoured; the fd's
// O_NONBLOCK flag is never left changed. docs/monkey.md documents every hooked function: when it
// waits, what it does outside a greenlet, where its timeout comes from and which errno values
// it returns.
#pragma once

namespace green::monkey {

enum class patch : unsigned {
    time = 1,    // sleep, usleep, nanosleep, clock_nanosleep
    socket = 2,  // I/O on sockets and pipes, connect/accept, poll/select/epoll_wait, close
    dns = 4,     // getaddrinfo & co. run in the threadpool
};

// Patches everything (gevent's patch_all). Creates the calling thread's hub, so its main
// greenlet waits cooperatively from then on. Idempotent; there is no unpatching.
void patch_all();
// Only the sleep family.
void patch_time();
// Socket and pipe I/O, poll/select/epoll_wait and close, and name resolution (as gevent's patch_socket).
void patch_socket();

// True when patch_all() (or every patch) has been applied.
bool is_patched() noexcept;
bool is_patched(patch what) noexcept;

}  // namespace green::monkey
