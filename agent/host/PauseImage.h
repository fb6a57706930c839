#pragma once
// The image of the awsvpc network holder (DESIGN 3.3), made by the agent itself so that no
// registry is needed: the static program of agent/pause/ is built into the agent, and
// written out as a docker-save archive (manifest.json, image config, one layer) that
// Runtime::loadImage takes.
#include <string>
#include <string_view>

namespace daemonlet::agent {

// The program's bytes, as built with the agent.
std::string_view pauseProgram();
// daemonlet/pause:<12 hex digits of the program>: a new build is a new tag.
std::string pauseImageName();
// The archive's bytes (a POSIX tar).
std::string pauseImageArchive();

}  // namespace daemonlet::agent
