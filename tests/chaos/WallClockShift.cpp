// LD_PRELOAD shim for the chaos driver's clock_step fault: shifts the wall clock of one
// process by the whole seconds written in the file named by DAEMONLET_CLOCK_SHIFT_FILE
// ("+3600", "-86400"), re-read at most every 50 ms so that a step lands while it runs.
//
// Why not libfaketime: it also rewrites the absolute deadlines of CLOCK_MONOTONIC
// timerfds, and asio arms its timerfd with an absolute 1 ns deadline whenever a timer is
// already due; after a step no timer of the agent fired again. A real clock step moves
// CLOCK_REALTIME only, so that is all this shifts: clock_gettime(CLOCK_REALTIME[_COARSE]),
// gettimeofday and time. The monotonic clocks and timerfds are left alone.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace {

using ClockGettime = int (*)(clockid_t, timespec*);

ClockGettime realClockGettime() {
  static const auto fn = reinterpret_cast<ClockGettime>(dlsym(RTLD_NEXT, "clock_gettime"));
  return fn;
}

long long monotonicNs() {
  timespec ts{};
  realClockGettime()(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Parses "[+-]SECONDS"; anything else is no shift.
long long parseShift(const char* text, ssize_t n) {
  long long sign = 1, value = 0;
  ssize_t i = 0;
  if (i < n && (text[i] == '+' || text[i] == '-')) sign = text[i++] == '-' ? -1 : 1;
  for (; i < n && text[i] >= '0' && text[i] <= '9'; ++i) value = value * 10 + (text[i] - '0');
  return sign * value;
}

std::atomic<long long> cachedShift{0};
std::atomic<long long> nextReadNs{0};

long long shiftSeconds() {
  const long long now = monotonicNs();
  if (now >= nextReadNs.load(std::memory_order_relaxed)) {
    nextReadNs.store(now + 50'000'000, std::memory_order_relaxed);
    if (const char* path = std::getenv("DAEMONLET_CLOCK_SHIFT_FILE")) {
      const int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        char buf[32];
        const ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        if (n > 0) cachedShift.store(parseShift(buf, n), std::memory_order_relaxed);
      }
    }
  }
  return cachedShift.load(std::memory_order_relaxed);
}

}  // namespace

extern "C" {

int clock_gettime(clockid_t clock, timespec* ts) {
  const int rc = realClockGettime()(clock, ts);
  if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) ts->tv_sec += shiftSeconds();
  return rc;
}

int gettimeofday(struct timeval* tv, void*) {
  timespec ts{};
  const int rc = clock_gettime(CLOCK_REALTIME, &ts);
  if (rc == 0) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return rc;
}

time_t time(time_t* out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out) *out = ts.tv_sec;
  return ts.tv_sec;
}

}  // extern "C"
