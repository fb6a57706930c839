#include "agent/host/CgroupMounts.h"

#include <fstream>
#include <set>
#include <sstream>

namespace daemonlet::agent {
namespace {

std::vector<std::string> splitCommas(std::string_view list) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in{std::string(list)};
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Every controller (and name=...) some cgroup v1 mount carries, from the super options
// after mountinfo's " - cgroup <source> ".
std::set<std::string> mountedControllers(std::string_view mountinfo) {
  std::set<std::string> out;
  std::istringstream in{std::string(mountinfo)};
  std::string line;
  while (std::getline(in, line)) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream fields(line.substr(dash + 3));
    std::string type, source, options;
    if (!(fields >> type >> source >> options) || type != "cgroup") continue;
    for (auto& option : splitCommas(options)) out.insert(option);
  }
  return out;
}

std::string readAll(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> unmountedCgroupHierarchies(std::string_view procCgroup, std::string_view mountinfo) {
  const std::set<std::string> mounted = mountedControllers(mountinfo);
  std::vector<std::string> missing;
  std::istringstream in{std::string(procCgroup)};
  std::string line;
  while (std::getline(in, line)) {
    // "<hierarchy id>:<controllers>:<path>"; id 0 with no controllers is cgroup v2.
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    if (controllers.empty()) continue;
    for (const auto& c : splitCommas(controllers)) {
      if (!mounted.count(c)) {
        missing.push_back(controllers);
        break;
      }
    }
  }
  return missing;
}

std::vector<std::string> unmountedCgroupHierarchies() {
  const std::string procCgroup = readAll("/proc/self/cgroup");
  const std::string mountinfo = readAll("/proc/self/mountinfo");
  if (procCgroup.empty() || mountinfo.empty()) return {};
  return unmountedCgroupHierarchies(procCgroup, mountinfo);
}

std::string cgroupMountCommand(const std::string& hierarchy) {
  const std::string dir = "/sys/fs/cgroup/" + (hierarchy.rfind("name=", 0) == 0 ? hierarchy.substr(5) : hierarchy);
  const std::string options = hierarchy.rfind("name=", 0) == 0 ? "none," + hierarchy : hierarchy;
  return "mkdir -p " + dir + " && mount -t cgroup -o " + options + " cgroup " + dir;
}

}  // namespace daemonlet::agent
