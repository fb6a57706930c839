// HTTP framing of the engine client against a local Beast server on a unix socket:
// keep-alive reuse, chunked bodies, error bodies, streams split at odd places, deadlines.
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "runtime/docker/UnixHttpClient.h"
#include "support/Async.h"

using namespace daemonlet;
using namespace daemonlet::runtime;
using namespace std::chrono_literals;
namespace beast = boost::beast;
using local = asio::local::stream_protocol;

namespace {

// A scripted server: for each request, `respond` returns raw bytes to send and whether to
// close the connection afterwards. Runs on its own thread with blocking I/O.
class ScriptedServer {
 public:
  using Respond = std::function<std::pair<std::string, bool>(const http::request<http::string_body>&)>;

  explicit ScriptedServer(Respond respond)
      : path_(fmt::format("/tmp/dl-http-{}-{}.sock", getpid(), counter_++)), respond_(std::move(respond)) {
    ::unlink(path_.c_str());
    acceptor_.open();
    acceptor_.bind(local::endpoint(path_));
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    // Closing the acceptor from this thread does not wake a blocking accept(); a
    // connection does.
    asio::io_context io;
    local::socket wake(io);
    boost::system::error_code ec;
    wake.connect(local::endpoint(path_), ec);
    thread_.join();
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  int connections() const { return connections_; }

 private:
  void serve() {
    while (!stopping_) {
      local::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      ++connections_;
      beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> req;
        http::read(socket, buffer, req, ec);
        if (ec) break;
        auto [bytes, close] = respond_(req);
        asio::write(socket, asio::buffer(bytes), ec);
        if (ec || close) break;
      }
      socket.close(ec);
    }
  }

  static inline std::atomic<int> counter_{0};
  std::string path_;
  Respond respond_;
  asio::io_context io_;
  local::acceptor acceptor_{io_};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
};

std::string response(int status, const std::string& body, const std::string& extra = "") {
  return fmt::format("HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{}", status, body.size(), extra, body);
}

}  // namespace

TEST_CASE("http: keep-alive connections are reused") {
  ScriptedServer server([](const auto& req) { return std::pair{response(200, "{\"path\":\"" + std::string(req.target()) + "\"}"), false}; });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  for (int i = 0; i < 3; ++i) {
    auto r = test::runAsync(io, client.request(http::verb::get, fmt::format("/v1.41/n{}", i), "", "", 5s));
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(r->body == fmt::format("{{\"path\":\"/v1.41/n{}\"}}", i));
    CHECK(r->header("content-type") == "application/json");
  }
  CHECK(server.connections() == 1);
}

TEST_CASE("http: a kept-alive connection the server closed is replaced transparently") {
  ScriptedServer server([](const auto&) { return std::pair{response(200, "ok"), true}; });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  for (int i = 0; i < 3; ++i) {
    auto r = test::runAsync(io, client.request(http::verb::post, "/x", "{}", "", 5s));
    INFO((r.ok() ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK(r->body == "ok");
  }
  CHECK(server.connections() == 3);
}

TEST_CASE("http: chunked bodies are reassembled") {
  ScriptedServer server([](const auto&) {
    return std::pair{std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "5\r\n[{\"a\"\r\n"
                                 "3\r\n:1}\r\n"
                                 "1\r\n]\r\n"
                                 "0\r\n\r\n"),
                     false};
  });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  auto r = test::runAsync(io, client.request(http::verb::get, "/containers/json", "", "", 5s));
  REQUIRE(r.ok());
  CHECK(r->body == "[{\"a\":1}]");
}

TEST_CASE("http: error bodies keep the engine's message") {
  ScriptedServer server([](const auto&) { return std::pair{response(500, "{\"message\":\"driver failed programming external connectivity\"}"), false}; });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  auto r = test::runAsync(io, client.request(http::verb::post, "/containers/x/start", "", "", 5s));
  REQUIRE(r.ok());
  CHECK(r->status == 500);
  CHECK(engineMessage(r->body) == "driver failed programming external connectivity");
  CHECK(engineMessage("plain text\n") == "plain text");
}

TEST_CASE("http: a server that never answers hits the deadline") {
  ScriptedServer server([](const auto&) {
    std::this_thread::sleep_for(1500ms);
    return std::pair{response(200, "late"), true};
  });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  auto r = test::runAsync(io, client.request(http::verb::get, "/slow", "", "", 300ms));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::Timeout);
}

TEST_CASE("http: a missing socket says which and why") {
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), "/tmp/daemonlet-nothing-here.sock");
  auto r = test::runAsync(io, client.request(http::verb::get, "/_ping", "", "", 1s));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::Unavailable);
  CHECK(r.error().message.find("/tmp/daemonlet-nothing-here.sock") != std::string::npos);
}

TEST_CASE("http: streamed lines survive chunk boundaries anywhere") {
  ScriptedServer server([](const auto&) {
    // Three JSON lines cut at awkward places, two in one chunk, one across three.
    const std::string chunks[] = {"{\"n\":1}\n{\"n\"", ":2}\n{", "\"n\":3", "}\n"};
    std::string raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const auto& c : chunks) raw += fmt::format("{:x}\r\n{}\r\n", c.size(), c);
    raw += "0\r\n\r\n";
    return std::pair{raw, true};
  });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  std::vector<std::string> lines;
  bool opened = false;
  auto r = test::runAsync(io, client.streamLines(http::verb::get, "/events", 5s, [&] { opened = true; },
                                                 [&](std::string_view l) { lines.emplace_back(l); }));
  CHECK(opened);
  REQUIRE_FALSE(r.ok());  // the stream ended: reported so the caller reconnects
  CHECK(r.error().code == Error::Code::Unavailable);
  CHECK(lines == std::vector<std::string>{"{\"n\":1}", "{\"n\":2}", "{\"n\":3}"});
}

TEST_CASE("http: a stream refused with an error status carries the message") {
  ScriptedServer server([](const auto&) { return std::pair{response(400, "{\"message\":\"invalid filter 'x'\"}"), true}; });
  asio::io_context io;
  UnixHttpClient client(io.get_executor(), server.path());
  auto r = test::runAsync(io, client.streamLines(http::verb::get, "/events", 5s, nullptr, [](std::string_view) {}));
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message);
  CHECK(r.error().message.find("invalid filter 'x'") != std::string::npos);
}
