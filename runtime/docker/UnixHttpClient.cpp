#include "runtime/docker/UnixHttpClient.h"

#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/docker/DockerJson.h"

namespace daemonlet::runtime {
namespace {

namespace beast = boost::beast;
using asio::redirect_error;
using asio::use_awaitable;

constexpr std::size_t kMaxIdleConnections = 8;

bool isStaleConnection(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

std::string HttpResponse::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? std::string() : it->second;
}

std::string engineMessage(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object() && json.contains("message") && json["message"].is_string()) return json["message"].get<std::string>();
  std::string text = body.substr(0, 300);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

UnixHttpClient::UnixHttpClient(asio::any_io_executor executor, std::string socketPath)
    : executor_(std::move(executor)), socketPath_(std::move(socketPath)) {}

UnixHttpClient::~UnixHttpClient() { cancelStreams(); }

void UnixHttpClient::cancelStreams() {
  for (Stream* s : streaming_) {
    boost::system::error_code ignored;
    s->socket().shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
    s->cancel();
  }
  idle_.clear();
}

Error UnixHttpClient::mapError(const boost::system::error_code& ec, std::string_view what) const {
  if (ec == beast::error::timeout) return {Error::Code::Timeout, fmt::format("{}: no answer from {} in time", what, socketPath_)};
  if (ec == asio::error::operation_aborted) return {Error::Code::Cancelled, fmt::format("{}: cancelled", what)};
  if (ec == asio::error::access_denied || ec == boost::system::errc::permission_denied)
    return {Error::Code::PermissionDenied, fmt::format("{}: permission denied on {} (run as root or as a member of the socket's group)", what, socketPath_)};
  if (ec == boost::system::errc::no_such_file_or_directory || ec == asio::error::connection_refused)
    return {Error::Code::Unavailable, fmt::format("{}: cannot connect to {}: {} (is the engine running?)", what, socketPath_, ec.message())};
  if (isStaleConnection(ec)) return {Error::Code::Unavailable, fmt::format("{}: the engine closed the connection", what)};
  return {Error::Code::Protocol, fmt::format("{}: {}", what, ec.message())};
}

asio::awaitable<Result<std::unique_ptr<UnixHttpClient::Stream>>> UnixHttpClient::connect(std::chrono::milliseconds deadline) {
  auto stream = std::make_unique<Stream>(executor_);
  stream->expires_after(deadline);
  boost::system::error_code ec;
  co_await stream->async_connect(asio::local::stream_protocol::endpoint(socketPath_), redirect_error(use_awaitable, ec));
  if (ec) co_return mapError(ec, "connect");
  co_return std::move(stream);
}

asio::awaitable<Result<HttpResponse>> UnixHttpClient::request(http::verb method, std::string target,
                                                              std::string body, std::string contentType,
                                                              std::chrono::milliseconds deadline) {
  const std::string what = fmt::format("{} {}", std::string(http::to_string(method)), target);
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "daemonlet/" DAEMONLET_VERSION);
  if (!body.empty() || method == http::verb::post || method == http::verb::put) {
    req.set(http::field::content_type, contentType.empty() ? "application/json" : contentType);
    req.body() = std::move(body);
  }
  req.keep_alive(true);
  req.prepare_payload();

  // A kept-alive connection may have been closed by the engine meanwhile: then, and only
  // when nothing of the answer arrived, the request goes once more on a new connection.
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Stream> stream;
    const bool reused = !idle_.empty() && attempt == 0;
    if (reused) {
      stream = std::move(idle_.back());
      idle_.pop_back();
    } else {
      auto connected = co_await connect(deadline);
      if (!connected) co_return connected.error();
      stream = std::move(connected.value());
    }
    stream->expires_after(deadline);
    boost::system::error_code ec;
    co_await http::async_write(*stream, req, redirect_error(use_awaitable, ec));
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    if (!ec) co_await http::async_read(*stream, buffer, parser, redirect_error(use_awaitable, ec));
    if (ec && reused && isStaleConnection(ec) && !parser.got_some()) continue;
    if (ec == http::error::body_limit) co_return Error{Error::Code::Protocol, fmt::format("{}: answer larger than {} bytes", what, kMaxBodyBytes)};
    if (ec) co_return mapError(ec, what);

    auto& res = parser.get();
    HttpResponse out;
    out.status = res.result_int();
    for (const auto& field : res) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      out.headers[name] = std::string(field.value());
    }
    out.body = std::move(res.body());
    if (res.keep_alive() && idle_.size() < kMaxIdleConnections) {
      stream->expires_never();
      idle_.push_back(std::move(stream));
    }
    co_return out;
  }
}

asio::awaitable<Status> UnixHttpClient::streamLines(http::verb method, std::string target,
                                                    std::chrono::milliseconds connectDeadline,
                                                    std::function<void()> onOpen,
                                                    std::function<void(std::string_view)> onLine) {
  const std::string what = fmt::format("{} {}", std::string(http::to_string(method)), target);
  auto connected = co_await connect(connectDeadline);
  if (!connected) co_return connected.error();
  std::unique_ptr<Stream> stream = std::move(connected.value());
  streaming_.insert(stream.get());
  struct Unregister {
    std::set<Stream*>& set;
    Stream* stream;
    ~Unregister() { set.erase(stream); }
  } unregister{streaming_, stream.get()};

  http::request<http::empty_body> req{method, target, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "daemonlet/" DAEMONLET_VERSION);
  boost::system::error_code ec;
  co_await http::async_write(*stream, req, redirect_error(use_awaitable, ec));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  // A stream has no end; lines are consumed as they come. Not boost::none: Beast 1.74
  // compares Content-Length against the empty optional and fails every sized body.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) co_await http::async_read_header(*stream, buffer, parser, redirect_error(use_awaitable, ec));
  if (ec) co_return mapError(ec, what);
  if (parser.get().result_int() != 200) {
    // Still under the connect deadline: an error body cannot hold us forever.
    co_await http::async_read(*stream, buffer, parser, redirect_error(use_awaitable, ec));
    co_return Error{parser.get().result_int() == 404 ? Error::Code::NotFound : Error::Code::Engine,
                    fmt::format("{}: HTTP {}: {}", what, parser.get().result_int(), engineMessage(parser.get().body()))};
  }
  stream->expires_never();  // events may be minutes apart
  if (onOpen) onOpen();
  while (!parser.is_done()) {
    co_await http::async_read_some(*stream, buffer, parser, redirect_error(use_awaitable, ec));
    docker::takeLines(parser.get().body(), onLine);
    if (ec) break;
  }
  if (!ec || ec == http::error::end_of_stream) co_return Error{Error::Code::Unavailable, fmt::format("{}: the engine ended the stream", what)};
  co_return mapError(ec, what);
}

}  // namespace daemonlet::runtime
