#pragma once
// CPU in units (1024 = 1 vCPU) and memory in MiB, the ECS conventions.
#include <cstdint>

#include "config/TaskDefinition.h"

namespace daemonlet::config {

struct Resources {
  std::int64_t cpu = 0;
  std::int64_t memory = 0;

  Resources& operator+=(const Resources& o) { cpu += o.cpu; memory += o.memory; return *this; }
  Resources& operator-=(const Resources& o) { cpu -= o.cpu; memory -= o.memory; return *this; }
  friend Resources operator+(Resources a, const Resources& b) { return a += b; }
  friend Resources operator-(Resources a, const Resources& b) { return a -= b; }
  friend bool operator==(const Resources&, const Resources&) = default;
  bool fitsIn(const Resources& room) const { return cpu <= room.cpu && memory <= room.memory; }
};

// What a task holds off the instance (DESIGN 3.3): the task-level cpu/memory where set,
// else the sum over containers of cpu and of memoryReservation (or memory when no
// reservation is declared). Each dimension is decided on its own.
Resources reservationOf(const TaskDefinition& definition);

}  // namespace daemonlet::config
