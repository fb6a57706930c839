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
};

// Loads every file it can. A bad file is reported and skipped; when `lastGood` holds what
// that file said before (same daemon file, same task id), that version is kept (P6).
DirectoryLoad loadDefinitionDirectory(const std::filesystem::path& dir,
                                      const DesiredState* lastGood = nullptr);

// True for the file names the directory source reads.
bool isDefinitionFile(const std::filesystem::path& path);

}  // namespace daemonlet::config
