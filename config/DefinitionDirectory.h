#pragma once
// The directory source's layout (DESIGN 3.4): DIR/daemons/*.{json,yaml,yml} holds one
// daemon definition per file, DIR/tasks/*.{json,yaml,yml} one application task per file
// (id = file name without extension).
#include <filesystem>

#include "config/DesiredState.h"
#include "config/Diagnostic.h"

namespace daemonlet::config {

struct DirectoryLoad {
  DesiredState state;
  Diagnostics diagnostics;
  // Why part of `lastGood` was kept whole: a directory gone or unlistable. Config tools
  // replace directories all the time (mv new old, rsync, ansible); a glitch must not read
  // as "remove everything".
  std::vector<std::string> problems;
};

// Loads every file it can. A bad file is reported and skipped; when `lastGood` holds what
// that file said before (same daemon file, same task id), that version is kept (P6).
// A definitions root, daemons/ or tasks/ that is missing or cannot be listed keeps what
// `lastGood` had from it; only a listable directory without the file removes an entry. A
// root that never existed (no `lastGood`) is an empty desired state.
DirectoryLoad loadDefinitionDirectory(const std::filesystem::path& dir,
                                      const DesiredState* lastGood = nullptr);

// True for the file names the directory source reads.
bool isDefinitionFile(const std::filesystem::path& path);

}  // namespace daemonlet::config
