// The promise "existing ECS files work unchanged", held against task definitions other
// people wrote (../shared/ecs-corpus, SOURCES.md says where each comes from). The corpus is
// read where it lies, at test time, and never copied into the repository: it is other
// people's work, kept byte for byte.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "config/TaskDefinitionParser.h"

using namespace daemonlet::config;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = DAEMONLET_ECS_CORPUS;

struct Refusal {
  const char* field;    // the error that must be among the file's diagnostics
  const char* message;  // part of its message
  const char* reason;   // why this file cannot validate; the README lists the same
};

// Files of valid/ that are refused on purpose. Everything else in valid/ must validate.
const std::map<std::string, Refusal> kRefused = {
    // Placeholders: the file is a template someone fills in before use.
    {"gokabot__taskdef.json", {"containerDefinitions[0].image", "not an image reference", "image is CodeDeploy's placeholder <IMAGE1_NAME>"}},
    {"aws-xray-fargate__service-b-taskdef.json", {"containerDefinitions[0].image", "not an image reference", "images are placeholders <repository_url_service_b>, <repository_uri_xray_daemon>"}},
    {"nri-ecs__task_definition_example.json", {"containerDefinitions[0].image", "not an image reference", "image is the placeholder <INTEGRATION_IMAGE>"}},
    {"nri-ecs__fargate_sidecar_example.json", {"containerDefinitions[1].image", "not an image reference", "image is the placeholder <INTEGRATION_IMAGE>"}},
    {"ecspresso__td.json", {"taskDefinition.containerDefinitions[0].image", "not an image reference", "image holds an ecspresso template {{ env `TAG` `latest` }}"}},
    {"sample-cmd-task__container-definitions.json", {"containerDefinitions[0].image", "must not be empty", "image is \"\", filled in at run time (the file also sets essential twice)"}},
    // Needs an AWS service a Linux host does not have; running without it would change
    // the application's data or security.
    {"amazon-ecs-firelens-examples__efs-task-definition.json", {"taskDefinition.volumes[0].efsVolumeConfiguration", "EFS", "its volume is an EFS file system"}},
    {"amazon-ecs-firelens-examples__appmesh-firelens-colorteller-black-ecs-task-def.json", {"proxyConfiguration", "proxy", "App Mesh: traffic is redirected through Envoy by proxyConfiguration"}},
};

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string listing(const Parsed<TaskDefinition>& p) {
  std::string out;
  for (const auto& d : p.diagnostics) out += d.format() + "\n";
  return out;
}

std::vector<fs::path> filesIn(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("ECS corpus: every valid/ file validates unless it is listed with its reason") {
  // A missing corpus must fail, not pass by testing nothing.
  INFO("ECS corpus expected at " << kCorpus.string());
  REQUIRE(fs::is_directory(kCorpus / "valid"));
  const auto files = filesIn(kCorpus / "valid");
  REQUIRE(files.size() == 27);  // the README's "N of 27"

  std::set<std::string> seen;
  int accepted = 0;
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    seen.insert(name);
    auto p = loadTaskDefinitionFile(path);
    INFO(name << "\n" << listing(p));
    auto refusal = kRefused.find(name);
    if (refusal == kRefused.end()) {
      CHECK(p.ok());
      if (!p.ok()) continue;
      ++accepted;
      // What the agent saves in state.json reads back as the same revision.
      auto again = parseTaskDefinition(p.value->canonicalJson, path.string());
      INFO(listing(again));
      REQUIRE(again.ok());
      CHECK(again.value->hash == p.value->hash);
      continue;
    }
    INFO("refused because: " << refusal->second.reason);
    CHECK_FALSE(p.ok());
    const bool because = std::any_of(p.diagnostics.begin(), p.diagnostics.end(), [&](const Diagnostic& d) {
      return d.severity == Severity::Error && d.field == refusal->second.field && d.message.find(refusal->second.message) != std::string::npos && d.line > 0;
    });
    CHECK(because);
  }
  for (const auto& [name, refusal] : kRefused) {
    INFO(name << " is listed as refused but is not in the corpus");
    CHECK(seen.count(name) == 1);
  }
  CHECK(accepted == 19);  // the README's figure
}

TEST_CASE("ECS corpus: every templated/ file is refused with FILE:LINE:COL") {
  INFO("ECS corpus expected at " << kCorpus.string());
  REQUIRE(fs::is_directory(kCorpus / "templated"));
  const auto files = filesIn(kCorpus / "templated");
  REQUIRE(files.size() == 6);
  for (const auto& path : files) {
    auto p = parseTaskDefinition(readAll(path), path.string());
    INFO(path.filename().string() << "\n" << listing(p));
    CHECK_FALSE(p.ok());
    REQUIRE(hasErrors(p.diagnostics));
    for (const auto& d : p.diagnostics) {
      if (d.severity != Severity::Error) continue;
      CHECK(d.file == path.string());
      CHECK(d.line > 0);
      CHECK(d.column > 0);
    }
  }
}
