#include "config/Resources.h"

namespace daemonlet::config {

Resources reservationOf(const TaskDefinition& definition) {
  Resources sum;
  for (const auto& c : definition.containers) {
    sum.cpu += c.cpu.value_or(0);
    sum.memory += c.memoryReservation ? *c.memoryReservation : c.memory.value_or(0);
  }
  return {definition.cpu.value_or(sum.cpu), definition.memory.value_or(sum.memory)};
}

}  // namespace daemonlet::config
