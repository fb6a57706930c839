#pragma once
// The introspection API (DESIGN 3.7) over HTTP/1.1 with Boost.Beast, on the agent's
// io_context, on two channels: a TCP listener (loopback by default) that is read-only and
// refuses browsers, because every host-network container and every web page can reach
// 127.0.0.1; and a unix socket (apiSocket, 0660, group daemonlet) that also takes drain and
// undrain. Every read has a deadline and a size limit, so a client that sends garbage or
// holds a connection open costs nothing but its own socket.
#include <memory>
#include <string>

#include "agent/Logger.h"
#include "agent/api/ApiRouter.h"
#include "runtime/Asio.h"
#include "runtime/Result.h"

namespace daemonlet::agent {

class IntrospectionApi {
 public:
  IntrospectionApi(asio::any_io_executor executor, ApiBackend& backend, Logger& log);
  ~IntrospectionApi();

  using Channel = ApiRouter::Channel;

  // Binds HOST:PORT (port 0 = any), read-only. A non-loopback address is refused unless allowed.
  runtime::Status listen(const std::string& hostPort, bool allowNonLoopback);
  // Binds the unix socket at `path` (0660, group daemonlet when it exists). A stale socket
  // file is replaced; one another agent still answers on is an error.
  runtime::Status listenSocket(const std::string& path);
  unsigned short port() const;
  void stop();

  using Request = ApiRouter::Request;
  using Response = ApiRouter::Response;
  Response handle(const Request& request, Channel channel);

 private:
  template <class Acceptor>
  asio::awaitable<void> acceptLoop(Acceptor& acceptor, Channel channel);
  template <class Socket>
  asio::awaitable<void> serve(Socket socket, Channel channel);
  int& connectionsOf(Channel channel) { return channel == Channel::Tcp ? tcpConnections_ : socketConnections_; }

  asio::any_io_executor executor_;
  ApiRouter router_;
  Logger& log_;
  asio::ip::tcp::acceptor acceptor_;
  asio::local::stream_protocol::acceptor socketAcceptor_;
  std::string socketPath_;
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
  // Counted per channel: 64 idle TCP clients must not lock root out of the socket.
  int tcpConnections_ = 0;
  int socketConnections_ = 0;
};

// "127.0.0.1:51680" -> endpoint; nullopt when it is not HOST:PORT with a numeric host.
std::optional<asio::ip::tcp::endpoint> parseListenAddress(const std::string& hostPort);

}  // namespace daemonlet::agent
