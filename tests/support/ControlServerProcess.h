#pragma once
// tests/control/control_server.py as a child process, with blocking calls to its admin
// API. The server is killed when the object goes away.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api/ApiClient.h"

namespace daemonlet::test {

class ControlServerProcess {
 public:
  // `extra`: more control_server.py flags (--tls-cert ..., --token-file ...).
  explicit ControlServerProcess(const std::filesystem::path& scratch, std::vector<std::string> extra = {}, int port = 0)
      : readyFile_(scratch / ("control-ready-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".json")) {
    std::vector<std::string> args = {"python3", DAEMONLET_TESTS_DIR "/control/control_server.py", "--ready-file", readyFile_.string(),
                                     "--port", std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp("python3", argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !std::filesystem::exists(readyFile_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream in(readyFile_);
    nlohmann::json ready = nlohmann::json::parse(in, nullptr, false);
    if (ready.is_discarded()) throw std::runtime_error("control_server.py did not start (is python3 installed?)");
    port_ = ready["port"].get<int>();
    adminPort_ = ready["adminPort"].get<int>();
  }
  ~ControlServerProcess() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    std::filesystem::remove(readyFile_);
  }
  ControlServerProcess(const ControlServerProcess&) = delete;
  ControlServerProcess& operator=(const ControlServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url(const char* scheme = "http") const { return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_); }

  // Serves `doc` (verbatim) as the desired state; returns its ETag.
  std::string setDesired(const std::string& doc, const std::string& instance = "") {
    return admin("PUT", "/admin/desired?cluster=default" + (instance.empty() ? "" : "&instance=" + instance), doc)["etag"];
  }
  void fault(const std::string& mode, int retryAfter = 2, double delaySeconds = 5) {
    admin("PUT", "/admin/fault", nlohmann::json{{"mode", mode}, {"retryAfter", retryAfter}, {"delaySeconds", delaySeconds}}.dump());
  }
  nlohmann::json state() { return admin("GET", "/admin/state", ""); }

 private:
  nlohmann::json admin(const std::string& method, const std::string& path, const std::string& body) {
    const agent::ApiReply reply = agent::callApi("127.0.0.1:" + std::to_string(adminPort_), method, path, 10000, body);
    if (reply.status != 200) {
      throw std::runtime_error("control server admin API " + method + " " + path + ": " +
                               (reply.status ? "HTTP " + std::to_string(reply.status) + " " + reply.body : reply.error));
    }
    return nlohmann::json::parse(reply.body);
  }

  std::filesystem::path readyFile_;
  pid_t pid_ = -1;
  int port_ = 0;
  int adminPort_ = 0;
};

}  // namespace daemonlet::test
