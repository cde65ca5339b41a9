/* The echo benchmark's load: one client, many connections, each playing ping-pong (send a
 * message, wait for all of it to come back, send the next). Plain C on its own epoll loop, not
 * green, so it loads every server the same way.
 *
 *     echo_client -p PORT [-P SERVER_PID] [-c 64] [-s 64] [-w 1] [-d 5] [-n COUNT]
 *
 * -c connections, -s message bytes, -w warm-up seconds, -d measured seconds; -n COUNT instead
 * stops after exactly COUNT round trips, all measured (no warm-up), for counting what a server
 * does per request under strace or callgrind. It checks every
 * echo against what it sent. At the end it prints one line of key=value fields: round trips and
 * round trips per second in the measured window, its own CPU time per round trip, and with -P
 * the server's CPU time in the window (on-CPU nanoseconds from /proc/PID/task/TID/schedstat,
 * summed over its threads, read right at the window's start and end), per round trip and as a
 * share of the window; and how much CPU everything else on the machine used meanwhile
 * (other_load, in CPUs: the machine's busy time from /proc/stat less the client's and the
 * server's), because a benchmark sharing its CPUs with other work measures that work too. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { max_message = 65536 };

struct connection {
    int fd;
    uint64_t sequence; /* what makes each message different from the last */
    size_t received;
    char sent[max_message];
    char echoed[max_message];
};

static double now_seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU nanoseconds the process has run so far, all threads: schedstat's first field is the
 * time on CPU in ns. -1 when it cannot be read. */
static double process_cpu_ns(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR* dir = opendir(path);
    if (!dir) return -1;
    double total = 0;
    struct dirent* e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char file[320];
        snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE* f = fopen(file, "r");
        unsigned long long ns = 0;
        if (f) {
            if (fscanf(f, "%llu", &ns) == 1) total += (double)ns;
            fclose(f);
        }
    }
    closedir(dir);
    return total;
}

/* CPU nanoseconds the whole machine has spent busy so far (all CPUs, from /proc/stat: user,
 * nice, system, irq, softirq and steal), in clock ticks: coarse, but enough to tell whether
 * other processes ran during a window of seconds. -1 when it cannot be read. */
static double machine_busy_ns(void) {
    FILE* f = fopen("/proc/stat", "r");
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
    int got = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait, &irq,
                         &softirq, &steal)
                : 0;
    if (f) fclose(f);
    if (got != 8) return -1;
    return (double)(user + nice + system + irq + softirq + steal) * 1e9 / (double)sysconf(_SC_CLK_TCK);
}

static void fail(const char* what) {
    perror(what);
    exit(1);
}

static void send_message(struct connection* c, size_t size) {
    ++c->sequence;
    for (size_t i = 0; i < size; ++i) c->sent[i] = (char)('a' + (c->sequence + i) % 26);
    memcpy(c->sent, &c->sequence, sizeof c->sequence < size ? sizeof c->sequence : size);
    c->received = 0;
    /* An empty socket buffer always takes a small message whole. */
    if (write(c->fd, c->sent, size) != (ssize_t)size) fail("write (short or failed)");
}

static int connect_to(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr;
    int one = 1;
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) < 0) fail("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int main(int argc, char** argv) {
    int port = 0, server_pid = 0, connections = 64;
    size_t size = 64;
    double warmup = 1, duration = 5;
    uint64_t count_limit = 0;
    for (int opt; (opt = getopt(argc, argv, "p:P:c:s:w:d:n:")) != -1;) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'P': server_pid = atoi(optarg); break;
        case 'c': connections = atoi(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'n': count_limit = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: %s -p PORT [-P SERVER_PID] [-c 64] [-s 64] [-w 1] [-d 5] [-n COUNT]\n", argv[0]);
            return 2;
        }
    }
    if (port <= 0 || connections <= 0 || size == 0 || size > max_message || duration <= 0) {
        fprintf(stderr, "%s: need -p PORT, and -c, -s (1..%d), -d positive\n", argv[0], max_message);
        return 2;
    }

    struct connection* conns = calloc((size_t)connections, sizeof *conns);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < connections; ++i) {
        conns[i].fd = connect_to((unsigned short)port);
        conns[i].sequence = (uint64_t)i << 40;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(epfd, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    if (count_limit) warmup = 0;

    const double start = now_seconds(CLOCK_MONOTONIC);
    double window_start = start, window_end = start + warmup + duration;
    double client_cpu0 = now_seconds(CLOCK_PROCESS_CPUTIME_ID), server_cpu0 = server_pid ? process_cpu_ns(server_pid) : 0;
    double machine_busy0 = machine_busy_ns();
    uint64_t round_trips = 0, counted_from = 0;
    uint64_t sent = 0; /* messages sent: with -n, no more than COUNT */
    int measuring = warmup <= 0;
    for (int i = 0; i < connections && (!count_limit || sent < count_limit); ++i, ++sent) send_message(&conns[i], size);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, 2000);
        if (n == 0) {
            fprintf(stderr, "%s: the server stopped answering\n", argv[0]);
            return 1;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            struct connection* c = events[i].data.ptr;
            ssize_t got = read(c->fd, c->echoed + c->received, size - c->received);
            if (got == 0) {
                fprintf(stderr, "%s: the server closed a connection\n", argv[0]);
                return 1;
            }
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                fail("read");
            }
            c->received += (size_t)got;
            if (c->received < size) continue;
            if (memcmp(c->sent, c->echoed, size) != 0) {
                fprintf(stderr, "%s: an echo differs from its message\n", argv[0]);
                return 1;
            }
            ++round_trips;
            if (!count_limit || sent < count_limit) {
                send_message(c, size);
                ++sent;
            }
        }
        const double t = now_seconds(CLOCK_MONOTONIC);
        const int done = count_limit ? round_trips >= count_limit : measuring && t >= window_end;
        if (!measuring && t >= start + warmup) {
            measuring = 1;
            window_start = t;
            window_end = t + duration;
            counted_from = round_trips;
            client_cpu0 = now_seconds(CLOCK_PROCESS_CPUTIME_ID);
            if (server_pid) server_cpu0 = process_cpu_ns(server_pid);
            machine_busy0 = machine_busy_ns();
        } else if (done) {
            const double seconds = t - window_start;
            const double count = (double)(round_trips - counted_from);
            const double client_cpu_ns = (now_seconds(CLOCK_PROCESS_CPUTIME_ID) - client_cpu0) * 1e9;
            const double machine_busy = machine_busy_ns() - machine_busy0;
            double others = machine_busy - client_cpu_ns;
            printf("round_trips=%.0f seconds=%.3f rt_per_s=%.0f client_cpu_ns_per_rt=%.1f client_cpu_util=%.3f", count,
                   seconds, count / seconds, client_cpu_ns / count, client_cpu_ns / (seconds * 1e9));
            if (server_pid) {
                const double server_cpu_ns = process_cpu_ns(server_pid) - server_cpu0;
                printf(" server_cpu_ns_per_rt=%.1f server_cpu_util=%.3f", server_cpu_ns / count,
                       server_cpu_ns / (seconds * 1e9));
                others -= server_cpu_ns;
            }
            if (machine_busy0 >= 0) printf(" other_load=%.2f", others > 0 ? others / (seconds * 1e9) : 0.0);
            printf("\n");
            return 0;
        }
    }
}
