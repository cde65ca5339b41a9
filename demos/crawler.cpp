// The slow-server crawl: fetch N pages from a server that takes a second to answer each one.
// One after another that costs N seconds; with every request in its own task the waits
// overlap and it costs about one second, whatever N is.
//
// The program starts its own slow HTTP server (a green::stream_server on 127.0.0.1) and fetches
// the pages twice concurrently, each time with one task per page:
//   - with green::socket: a minimal HTTP GET written against the cooperative socket API;
//   - with libcurl's easy API: unmodified, blocking C code that knows nothing of green, made
//     cooperative by green::monkey::patch_all() (gevent's requests + monkey.patch_all()).
// --sequential first fetches the pages one at a time (green::socket), as the baseline.
//
//     crawler [--pages N] [--delay SECONDS] [--sequential]     defaults: 100 pages, 1.0 s
#include <green/hub.hpp>
#include <green/monkey.hpp>
#include <green/server.hpp>
#include <green/socket.hpp>

#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The server: reads a request, waits `delay` (the slow part), answers "page <path>".
void slow_page(green::socket& conn, green::duration delay) {
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
        std::string part = conn.recv(4096);
        if (part.empty()) return;
        request += part;
    }
    const std::string path = request.substr(4, request.find(' ', 4) - 4);  // "GET /7 HTTP/1.1"
    green::sleep(delay);
    const std::string body = "page " + path;
    conn.sendall("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body);
}

// Client 1: HTTP/1.1 GET on a green::socket. One request per connection; the response ends
// when the server closes. Returns the body, or throws if the status is not 200.
std::string socket_get(std::uint16_t port, const std::string& path) {
    green::socket conn = green::create_connection("127.0.0.1", port);
    conn.sendall("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    std::string response;
    for (std::string part; !(part = conn.recv(4096)).empty();) response += part;
    const std::size_t body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 200 ", 0) != 0 || body == std::string::npos)
        throw std::runtime_error("bad response for " + path);
    return response.substr(body + 4);
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* body) {
    static_cast<std::string*>(body)->append(data, size * n);
    return size * n;
}

// Client 2: plain libcurl, exactly as it would be written without green. Inside, libcurl
// calls connect, poll, send and recv; after patch_all() each of them waits in the hub.
std::string curl_get(std::uint16_t port, const std::string& path) {
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
    std::string body;
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) throw std::runtime_error(url + ": " + curl_easy_strerror(rc));
    return body;
}

using get_function = std::string (*)(std::uint16_t port, const std::string& path);

// Checks a page's body; the server echoes the path.
bool page_ok(const std::string& body, int page) { return body == "page /" + std::to_string(page); }

// Fetches pages 0..n-1 in turn: each request waits for the one before it.
int crawl_sequentially(get_function get, std::uint16_t port, int pages) {
    int ok = 0;
    for (int i = 0; i < pages; ++i) ok += page_ok(get(port, "/" + std::to_string(i)), i);
    return ok;
}

// Spawns a task per page and collects them: all the requests wait at the same time.
int crawl_concurrently(get_function get, std::uint16_t port, int pages) {
    std::vector<green::task<std::string>> fetches;
    for (int i = 0; i < pages; ++i) fetches.push_back(green::spawn(get, port, "/" + std::to_string(i)));
    int ok = 0;
    for (int i = 0; i < pages; ++i) ok += page_ok(fetches[i].get(), i);
    return ok;
}

void run(const char* label, const std::function<int()>& crawl, int pages) {
    const auto start = std::chrono::steady_clock::now();
    int ok = 0;
    try {
        ok = crawl();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s failed: %s\n", label, e.what());
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("%-44s %d/%d pages. Cost time: %.2f s\n", label, ok, pages, took.count());
    std::fflush(stdout);
}

[[noreturn]] void usage(const char* program) {
    std::fprintf(stderr, "usage: %s [--pages N] [--delay SECONDS] [--sequential]\n", program);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    int pages = 100;
    double delay = 1.0;
    bool sequential = false;
    for (int i = 1; i < argc; ++i) {
        char* end = nullptr;
        if (std::strcmp(argv[i], "--sequential") == 0) {
            sequential = true;
        } else if (std::strcmp(argv[i], "--pages") == 0 && i + 1 < argc) {
            pages = static_cast<int>(std::strtol(argv[++i], &end, 10));
            if (*end != '\0' || pages < 1 || pages > 10000) usage(argv[0]);
        } else if (std::strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
            delay = std::strtod(argv[++i], &end);
            if (*end != '\0' || !(delay >= 0 && delay <= 60)) usage(argv[0]);
        } else {
            usage(argv[0]);
        }
    }

    green::monkey::patch_all();  // first thing, as with gevent: libcurl's calls now wait in the hub
    curl_global_init(CURL_GLOBAL_DEFAULT);

    green::stream_server server(green::endpoint("127.0.0.1", 0),
                                [delay](green::socket& conn, const green::endpoint&) {
                                    slow_page(conn, std::chrono::duration<double>(delay));
                                });
    server.start();
    const std::uint16_t port = server.port();
    std::printf("A slow server on 127.0.0.1:%u answers each page after %.1f s. Fetching %d pages:\n", port, delay,
                pages);

    const std::string tasks = std::to_string(pages) + " tasks";
    if (sequential)
        run("sequential, one green::socket GET at a time:", [&] { return crawl_sequentially(socket_get, port, pages); },
            pages);
    else
        std::printf("%-44s skipped: about %.0f s (--sequential runs it)\n", "sequential, one GET at a time:",
                    pages * delay);
    run(("concurrent, " + tasks + " with green::socket:").c_str(),
        [&] { return crawl_concurrently(socket_get, port, pages); }, pages);
    run(("concurrent, " + tasks + " with blocking libcurl:").c_str(),
        [&] { return crawl_concurrently(curl_get, port, pages); }, pages);

    server.stop();
    curl_global_cleanup();
}
