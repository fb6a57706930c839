#include "agent/api/IntrospectionApi.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <boost/beast/core.hpp>
#include <fmt/format.h>


namespace daemonlet::agent {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(10);
constexpr int kMaxConnections = 64;

}  // namespace

std::optional<tcp::endpoint> parseListenAddress(const std::string& hostPort) {
  const auto colon = hostPort.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = hostPort.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  unsigned long port = 0;
  try {
    port = std::stoul(hostPort.substr(colon + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (port > 65535) return std::nullopt;
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

IntrospectionApi::IntrospectionApi(asio::any_io_executor executor, ApiBackend& backend, Logger& log)
    : executor_(executor), router_(backend, log), log_(log), acceptor_(executor), socketAcceptor_(executor) {}

IntrospectionApi::~IntrospectionApi() { stop(); }

void IntrospectionApi::stop() {
  *stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (socketAcceptor_.is_open()) {
    socketAcceptor_.close(ec);
    ::unlink(socketPath_.c_str());
  }
}

runtime::Status IntrospectionApi::listenSocket(const std::string& path) {
  namespace fs = std::filesystem;
  using runtime::Error;
  std::error_code fec;
  fs::create_directories(fs::path(path).parent_path(), fec);
  boost::system::error_code ec;
  if (fs::exists(path, fec)) {
    // Another agent still answering there must not lose its socket to us.
    asio::io_context probeIo;
    asio::local::stream_protocol::socket probe(probeIo);
    probe.connect(asio::local::stream_protocol::endpoint(path), ec);
    if (!ec) return Error{Error::Code::Conflict, fmt::format("apiSocket {}: another agent answers on it", path)};
    ::unlink(path.c_str());
  }
  socketAcceptor_.open(asio::local::stream_protocol(), ec);
  if (!ec) socketAcceptor_.bind(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) socketAcceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{Error::Code::Unavailable, fmt::format("apiSocket {}: {}", path, ec.message())};
  socketPath_ = path;
  // Root and the daemonlet group may drain; nobody else. The unit runs the agent with
  // the group as its primary group (its empty capability set has no CAP_CHOWN), so this
  // chown changes nothing there; without the group the socket stays root's only.
  if (::chmod(path.c_str(), 0660) != 0) {
    socketAcceptor_.close(ec);
    ::unlink(path.c_str());
    return Error{Error::Code::PermissionDenied, fmt::format("apiSocket {}: cannot set its mode: {}", path, strerror(errno))};
  }
  if (const struct group* g = ::getgrnam("daemonlet"); g && ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
    log_.warn("apiSocket {}: cannot give it to group daemonlet ({}); only root can drain", path, strerror(errno));
  asio::co_spawn(executor_, acceptLoop(socketAcceptor_, Channel::Socket), asio::detached);
  return runtime::Done{};
}

unsigned short IntrospectionApi::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

runtime::Status IntrospectionApi::listen(const std::string& hostPort, bool allowNonLoopback) {
  auto endpoint = parseListenAddress(hostPort);
  if (!endpoint) return runtime::Error{runtime::Error::Code::Protocol, fmt::format("listen: '{}' is not HOST:PORT with a numeric host", hostPort)};
  if (!endpoint->address().is_loopback()) {
    if (!allowNonLoopback) {
      return runtime::Error{runtime::Error::Code::PermissionDenied,
                            fmt::format("listen: {} is not a loopback address; the introspection API shows every task on this host. "
                                        "Set listenAllowNonLoopback: true to expose it anyway", hostPort)};
    }
    log_.warn("introspection API on non-loopback {}: anyone who can reach it sees this host's tasks (drain stays loopback-only)", hostPort);
  }
  boost::system::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return runtime::Error{runtime::Error::Code::Unavailable, fmt::format("listen on {}: {}", hostPort, ec.message())};
  asio::co_spawn(executor_, acceptLoop(acceptor_, Channel::Tcp), asio::detached);
  return runtime::Done{};
}

// The loops only log and go on: nothing in them throws past Beast's error codes.
template <class Acceptor>
asio::awaitable<void> IntrospectionApi::acceptLoop(Acceptor& acceptor, Channel channel) {
  auto stopped = stopped_;
  while (!*stopped) {
    boost::system::error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (*stopped) co_return;
    if (ec) continue;
    if (connectionsOf(channel) >= kMaxConnections) continue;  // dropped: the socket closes here
    asio::co_spawn(executor_, serve(std::move(socket), channel), asio::detached);
  }
}

template <class Socket>
asio::awaitable<void> IntrospectionApi::serve(Socket socket, Channel channel) {
  auto stopped = stopped_;
  int& connections = connectionsOf(channel);
  ++connections;
  struct Count {
    int& n;
    std::shared_ptr<bool> stopped;
    ~Count() {
      if (!*stopped) --n;
    }
  } count{connections, stopped};
  beast::basic_stream<typename Socket::protocol_type, asio::any_io_executor> stream(std::move(socket));
  boost::system::error_code ec;
  beast::flat_buffer buffer;
  while (!*stopped) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(ApiRouter::kMaxBody);
    stream.expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (*stopped) co_return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset) break;
    if (ec) {
      // Garbage: say so once and hang up.
      auto res = ApiRouter::malformed(ec.message());
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    Response res = handle(parser.get(), channel);
    const bool keepAlive = res.keep_alive();
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keepAlive) break;
  }
  stream.socket().shutdown(asio::socket_base::shutdown_send, ec);
}

IntrospectionApi::Response IntrospectionApi::handle(const Request& request, Channel channel) {
  return router_.handle(request, channel);
}

}  // namespace daemonlet::agent
