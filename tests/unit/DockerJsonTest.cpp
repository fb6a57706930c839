#include <catch2/catch.hpp>

#include "runtime/docker/DockerJson.h"

using namespace daemonlet::runtime;
using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("docker: a container spec becomes the create body") {
  ContainerSpec s;
  s.name = "daemonlet-daemon-metrics-3-abcdef12-agent";
  s.image = "metrics:3";
  s.command = {"run"};
  s.env = {"A=1"};
  s.labels = {{"io.daemonlet.managed", "true"}};
  s.networkMode = "host";
  s.ports = {{8080, 18080, "tcp"}, {53, 0, "udp"}};
  s.mounts = {{Mount::Type::Bind, "/proc", "/host/proc", true, 0, {}}, {Mount::Type::Tmpfs, "", "/tmp", false, 1048576, {}}};
  s.healthCheck = HealthCheckSpec{{"CMD-SHELL", "true"}, 10s, 2s, 1s, 4};
  s.memoryBytes = 256LL << 20;
  s.memoryReservationBytes = 128LL << 20;
  s.cpuShares = 256;
  s.nanoCpus = 250'000'000;
  s.capAdd = {"SYS_PTRACE"};
  s.ulimits = {{"nofile", 1024, 2048}};
  s.log = LogSpec{"json-file", {{"max-size", "10m"}}};
  s.stopTimeoutSeconds = 20;
  const json b = docker::createBody(s);
  CHECK(b["Image"] == "metrics:3");
  CHECK(b["Cmd"] == json::array({"run"}));
  CHECK_FALSE(b.contains("Entrypoint"));  // absent = the image's own
  CHECK(b["Labels"]["io.daemonlet.managed"] == "true");
  CHECK(b["Healthcheck"]["Interval"] == 10'000'000'000LL);
  CHECK(b["Healthcheck"]["Retries"] == 4);
  CHECK(b["StopTimeout"] == 20);
  const json& h = b["HostConfig"];
  CHECK(h["RestartPolicy"]["Name"] == "no");
  CHECK(h["NetworkMode"] == "host");
  CHECK(h["Memory"] == 256LL << 20);
  CHECK(h["MemoryReservation"] == 128LL << 20);
  CHECK(h["CpuShares"] == 256);
  CHECK(h["NanoCpus"] == 250'000'000);
  CHECK(h["PortBindings"]["8080/tcp"][0]["HostPort"] == "18080");
  CHECK(h["PortBindings"]["53/udp"][0]["HostPort"] == "");
  CHECK(b["ExposedPorts"].contains("53/udp"));
  CHECK(h["Mounts"][0] == json({{"Type", "bind"}, {"Source", "/proc"}, {"Target", "/host/proc"}, {"ReadOnly", true}}));
  CHECK(h["Mounts"][1]["TmpfsOptions"]["SizeBytes"] == 1048576);
  CHECK(h["CapAdd"] == json::array({"SYS_PTRACE"}));
  CHECK(h["Ulimits"][0]["Hard"] == 2048);
  CHECK(h["LogConfig"]["Config"]["max-size"] == "10m");
  CHECK_FALSE(h.contains("Privileged"));  // only what the definition asks for
  CHECK_FALSE(h.contains("CgroupParent"));  // the engine's default parent
  s.cgroupParent = "/daemonlet/task-web-1-0123456789ab";
  CHECK(docker::createBody(s)["HostConfig"]["CgroupParent"] == "/daemonlet/task-web-1-0123456789ab");
}

TEST_CASE("docker: inspect reports the parent cgroup and the address on a user-defined network") {
  auto holder = docker::parseInspect(json::parse(R"({"Id":"h","HostConfig":{"CgroupParent":"/daemonlet/g"},
    "NetworkSettings":{"IPAddress":"","Networks":{"daemonlet0":{"IPAddress":"172.30.0.2"}}}})"));
  REQUIRE(holder.ok());
  CHECK(holder->cgroupParent == "/daemonlet/g");
  CHECK(holder->ipAddress == "172.30.0.2");
  auto member = docker::parseInspect(json::parse(R"({"Id":"m","HostConfig":{"NetworkMode":"container:h"},"NetworkSettings":{"Networks":{}}})"));
  REQUIRE(member.ok());
  CHECK(member->ipAddress.empty());
  CHECK(member->cgroupParent.empty());
}

TEST_CASE("docker: inspect answers become container info") {
  const json j = json::parse(R"({"Id":"abc","Name":"/web","Created":"2026-11-24T01:00:00.5Z",
    "Config":{"Image":"web:1","Labels":{"io.daemonlet.kind":"task"}},
    "State":{"Status":"exited","ExitCode":137,"OOMKilled":true,"StartedAt":"2026-11-24T01:00:01.123456789Z",
             "FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"unhealthy"}},
    "HostConfig":{"Memory":67108864,"CpuShares":512,"NanoCpus":0}})");
  auto r = docker::parseInspect(j);
  REQUIRE(r.ok());
  CHECK(r->name == "web");
  CHECK(r->state == ContainerState::Exited);
  CHECK(r->exitCode == 137);
  CHECK(r->oomKilled);
  CHECK(r->health == Health::Unhealthy);
  CHECK(r->labels.at("io.daemonlet.kind") == "task");
  CHECK(r->memoryBytes == 67108864);
  CHECK_FALSE(r->nanoCpus);
  CHECK_FALSE(r->finishedAt);  // Docker's zero time
  REQUIRE(r->startedAt);
  CHECK(std::chrono::duration_cast<std::chrono::nanoseconds>(r->startedAt->time_since_epoch()).count() % 1'000'000'000 == 123456789);
  CHECK_FALSE(docker::parseInspect(json::object()).ok());
}

TEST_CASE("docker: events are recognised and engine attributes are not labels") {
  auto die = docker::parseEvent(R"({"Type":"container","Action":"die","Actor":{"ID":"c1","Attributes":{"exitCode":"143","image":"x","name":"n","io.daemonlet.family":"m"}},"time":1,"timeNano":1700000000123000000})");
  REQUIRE(die);
  CHECK(die->kind == RuntimeEvent::Kind::Exit);
  CHECK(die->exitCode == 143);
  CHECK(die->labels == Labels{{"io.daemonlet.family", "m"}});
  auto health = docker::parseEvent(R"({"Type":"container","Action":"health_status: healthy","Actor":{"ID":"c1","Attributes":{}}})");
  REQUIRE(health);
  CHECK(health->kind == RuntimeEvent::Kind::HealthChanged);
  CHECK(health->health == Health::Healthy);
  CHECK_FALSE(docker::parseEvent(R"({"Type":"container","Action":"exec_start: sh","Actor":{"ID":"c1"}})"));
  CHECK_FALSE(docker::parseEvent(R"({"Type":"network","Action":"connect"})"));
  CHECK_FALSE(docker::parseEvent("not json"));
}

TEST_CASE("docker: label filters are URL-encoded JSON") {
  CHECK(docker::filtersQuery({{"io.daemonlet.managed", "true"}}) == "%7B%22label%22%3A%5B%22io.daemonlet.managed%3Dtrue%22%5D%7D");
}

TEST_CASE("docker: volumes, the engine's log drivers and a container's log driver are read from its JSON") {
  const json body = docker::volumeCreateBody({"data", "local", {{"type", "tmpfs"}}, {{"team", "a"}}});
  CHECK(body == json{{"Name", "data"}, {"Driver", "local"}, {"DriverOpts", {{"type", "tmpfs"}}}, {"Labels", {{"team", "a"}}}});
  auto v = docker::parseVolume(json::parse(R"({"Name":"data","Driver":"local","Options":{"o":"size=8m"},"Labels":null,"Scope":"local"})"));
  REQUIRE(v.ok());
  CHECK(v->name == "data");
  CHECK(v->options.at("o") == "size=8m");
  CHECK(v->labels.empty());  // null labels: none
  CHECK_FALSE(docker::parseVolume(json::parse(R"({"message":"x"})")).ok());
  CHECK(docker::parseLogDrivers(json::parse(R"({"Plugins":{"Log":["awslogs","json-file","journald"],"Volume":["local"]}})")) ==
        std::vector<std::string>{"awslogs", "json-file", "journald"});
  CHECK(docker::parseLogDrivers(json::parse(R"({"Plugins":null})")).empty());
  auto c = docker::parseInspect(json::parse(R"({"Id":"x","HostConfig":{"LogConfig":{"Type":"awslogs","Config":{}}}})"));
  REQUIRE(c.ok());
  CHECK(c->logDriver == "awslogs");
}

// Found by the docker_json fuzzer: the engine's JSON is not ours to trust, and a field of an
// unexpected type threw out of the parser (nlohmann's value() on a non-object).
TEST_CASE("docker: fields of an unexpected type are ignored, never thrown") {
  auto noActor = docker::parseEvent(R"({"Type":"container","Action":"start","Actor":"abc"})");
  REQUIRE(noActor);
  CHECK(noActor->containerId.empty());
  auto listAttributes = docker::parseEvent(R"({"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":[1]}})");
  REQUIRE(listAttributes);
  CHECK(listAttributes->labels.empty());
  auto info = docker::parseInspect(json::parse(R"({"Id":"abc","State":{"Status":"exited","OOMKilled":"yes"}})"));
  REQUIRE(info.ok());
  CHECK_FALSE(info->oomKilled);
  CHECK(info->state == ContainerState::Exited);
}

TEST_CASE("docker: the event stream is cut into lines whatever the chunks") {
  const std::string stream = "{\"a\":1}\n\n{\"b\":2}\n{\"c\"";
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    std::string buffer;
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      buffer += stream.substr(at, chunk);
      docker::takeLines(buffer, [&](std::string_view line) { lines.emplace_back(line); });
    }
    CHECK(lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"});
    CHECK(buffer == "{\"c\"");
  }
}

// Found by the docker_json fuzzer (a year 26 time stamp): a year outside what the
// nanosecond clock holds (about 1678 to 2262) overflowed a signed 64-bit count (UB).
TEST_CASE("docker: a time stamp the clock cannot hold is no time, not an overflow") {
  CHECK_FALSE(docker::parseTime("0026-12-01T18:38:23.795335629Z"));
  CHECK_FALSE(docker::parseTime("9999-12-31T23:59:59Z"));
  CHECK(docker::parseTime("2026-12-01T18:38:23.795335629Z"));
  CHECK(docker::parseTime("1970-01-01T00:00:00Z"));
}

TEST_CASE("docker: engine answers with fields of the wrong type are read as absent, not thrown") {
  // nlohmann's value() throws on a mistyped member; out of the agent's boot that ended it.
  using nlohmann::json;
  const EngineInfo odd = docker::parseEngineInfo(json::parse(R"({"Version": 5})"),
                                                 json::parse(R"({"CgroupDriver": 1, "CgroupVersion": 2})"), "1.41");
  CHECK(odd.name == "docker");
  CHECK(odd.version == "?");
  CHECK(odd.apiVersion == "1.41");
  CHECK(odd.cgroupDriver == "cgroupfs");
  CHECK(odd.cgroupVersion == 0);
  const EngineInfo real = docker::parseEngineInfo(json::parse(R"({"Version": "20.10.24"})"),
                                                  json::parse(R"({"CgroupDriver": "systemd", "CgroupVersion": "2"})"), "1.41");
  CHECK(real.version == "20.10.24");
  CHECK(real.cgroupDriver == "systemd");
  CHECK(real.cgroupVersion == 2);
  CHECK(docker::parseEngineInfo(json::parse("[1]"), json::parse("null"), "1.40").version == "?");

  CHECK_FALSE(docker::parseInspect(json::parse(R"({"Id": 7, "Name": "/x"})")));
  CHECK(docker::createdId(json::parse(R"({"Id": "abc", "Warnings": []})")) == "abc");
  CHECK_FALSE(docker::createdId(json::parse(R"({"Id": 7})")));
  CHECK_FALSE(docker::createdId(json::parse(R"([])")));
  CHECK(docker::listedIds(json::parse(R"([{"Id": "a"}, 3, {"Id": 4}, {"Id": "b"}])")) == std::vector<std::string>{"a", "b"});
  CHECK(docker::streamedError("{\"status\": \"Loading\"}\n{\"errorDetail\": {\"message\": 5}, \"error\": 6}\n") == "unknown error");
  CHECK(docker::streamedError("{\"error\": \"no space left on device\"}\n") == "no space left on device");
  CHECK_FALSE(docker::streamedError("{\"stream\": \"Loaded image\"}\n"));
}
