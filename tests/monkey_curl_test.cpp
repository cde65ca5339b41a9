// An unmodified C library made concurrent: libcurl's easy API, blocking as written, in 20
// greenlets after patch_all(), against a local HTTP server that delays each response.
#include <green/hub.hpp>
#include <green/monkey.hpp>
#include <green/server.hpp>

#include <curl/curl.h>
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Reads one HTTP request, waits `delay`, answers with the path.
void slow_http(green::socket& conn, green::duration delay) {
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
        std::string part = conn.recv(4096);
        if (part.empty()) return;
        request += part;
    }
    const std::string path = request.substr(4, request.find(' ', 4) - 4);
    green::sleep(delay);
    const std::string body = "page " + path;
    conn.sendall("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body);
}

std::size_t append(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// Plain blocking libcurl: nothing here knows about green.
std::string fetch(const std::string& url) {
    CURL* curl = curl_easy_init();
    std::string body;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? body : std::string("error: ") + curl_easy_strerror(rc);
}

}  // namespace

TEST_CASE("20 libcurl GETs to a 0.5 s server take about 0.5 s, not 10 s") {
    green::monkey::patch_all();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    green::stream_server server(green::endpoint("127.0.0.1", 0),
                                [](green::socket& conn, const green::endpoint&) { slow_http(conn, 500ms); });
    server.start();
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
    const auto start = std::chrono::steady_clock::now();
    std::vector<green::task<std::string>> gets;
    for (int i = 0; i < 20; ++i) gets.push_back(green::spawn(fetch, base + std::to_string(i)));
    for (int i = 0; i < 20; ++i) CHECK(gets[i].get() == "page /" + std::to_string(i));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed >= 450ms);
    CHECK(elapsed < 2s);
    server.stop();
    curl_global_cleanup();
}
