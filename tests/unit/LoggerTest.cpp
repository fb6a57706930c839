// Logger: when stderr is the journal, and what a journal entry holds (Logger.h). That
// journald takes the entries is proven under a real systemd (tests/systemd/package_test.sh).
#include <cstdio>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "agent/Logger.h"

using namespace daemonlet;
using agent::LogFields;

TEST_CASE("logger: JOURNAL_STREAM counts only when it names the very file the fd is open on") {
  std::FILE* a = std::tmpfile();
  std::FILE* b = std::tmpfile();
  REQUIRE(a);
  REQUIRE(b);
  struct stat st {};
  REQUIRE(fstat(fileno(a), &st) == 0);
  const std::string stream = fmt::format("{}:{}", st.st_dev, st.st_ino);
  CHECK(agent::isJournalStream(stream.c_str(), fileno(a)));
  CHECK_FALSE(agent::isJournalStream(stream.c_str(), fileno(b)));  // stderr redirected by a drop-in or a shell
  CHECK_FALSE(agent::isJournalStream(nullptr, fileno(a)));
  CHECK_FALSE(agent::isJournalStream("", fileno(a)));
  CHECK_FALSE(agent::isJournalStream((stream + "x").c_str(), fileno(a)));
  CHECK_FALSE(agent::isJournalStream("journal", fileno(a)));
  std::fclose(a);
  std::fclose(b);
}

TEST_CASE("logger: a journal entry has a PRIORITY, no timestamp, and the fields that are known") {
  using config::LogLevel;
  CHECK(agent::journalEntry(LogLevel::Warn, "task root-1 STOPPED", LogFields::task("root", "root-1")) ==
        std::vector<std::string>{"MESSAGE=task root-1 STOPPED", "PRIORITY=4", "SYSLOG_IDENTIFIER=daemonlet",
                                 "DAEMONLET_FAMILY=root", "DAEMONLET_TASK_ID=root-1"});
  CHECK(agent::journalEntry(LogLevel::Info, "started", {"node-monitor", "", "abc123"}) ==
        std::vector<std::string>{"MESSAGE=started", "PRIORITY=6", "SYSLOG_IDENTIFIER=daemonlet", "DAEMONLET_FAMILY=node-monitor",
                                 "CONTAINER_ID=abc123"});
  CHECK(agent::journalEntry(LogLevel::Error, "x", {})[1] == "PRIORITY=3");
  CHECK(agent::journalEntry(LogLevel::Debug, "x", {})[1] == "PRIORITY=7");
  CHECK(agent::journalEntry(LogLevel::Trace, "x", {})[1] == "PRIORITY=7");
}

TEST_CASE("logger: off the journal, text lines keep their timestamp and JSON lines carry the fields") {
  std::ostringstream out;
  agent::Logger log(out, config::LogLevel::Info, config::LogFormat::Json);
  log.about(LogFields::task("web", "web-1")).warn("task {} STOPPED", "web-1");
  log.about(LogFields::daemon("node-monitor")).debug("not shown at info");
  const std::string line = out.str();
  CHECK(line.find(R"("family":"web")") != std::string::npos);
  CHECK(line.find(R"("taskId":"web-1")") != std::string::npos);
  CHECK(line.find(R"("level":"warn")") != std::string::npos);
  CHECK(line.find("not shown") == std::string::npos);
  std::ostringstream text;
  agent::Logger plain(text);
  plain.at(config::LogLevel::Warn, "slot gate opened by timeout");
  CHECK(text.str().find("Z warn  slot gate opened by timeout\n") != std::string::npos);
  CHECK(text.str().rfind("20", 0) == 0);
}
