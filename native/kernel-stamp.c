/*
 * The kernel's receive time of the datagram a UDP socket handed out last
 * (SIOCGSTAMPNS, socket(7)), on the monotonic clock, in milliseconds.
 *
 * node:dgram gives JavaScript a datagram when the event loop gets to it: after
 * the process wakes, and after the datagrams read before it are handled. Time
 * spent there is part of what a hop adds, and only the kernel saw it start. The
 * loop reads one datagram and runs its handler before it reads the next, so in
 * the handler this ioctl answers for that very datagram.
 *
 * The stamp is on CLOCK_REALTIME; it is handed to the caller on CLOCK_MONOTONIC,
 * the clock of performance.now(), converted here (see stampMs).
 */
#define NAPI_VERSION 8
#include <linux/sockios.h>
#include <node_api.h>
#include <sys/ioctl.h>
#include <time.h>

/* Ages past this are a step of the wall clock between the stamp and its reading, not a wait. */
#define MAX_AGE_NS 10000000000LL

/* stampMs(fd): when the kernel stamped the last datagram read from fd, in
 * milliseconds on CLOCK_MONOTONIC (the clock of libuv's uv_hrtime, under
 * performance.now()); -1 when there is no usable stamp (none read yet, not a
 * socket, an age of 0 or past MAX_AGE_NS). The first call on a socket turns its
 * stamping on. A datagram that arrived before stamping was on reads as just
 * arrived (the kernel then answers with the current time): -1.
 *
 * The stamp is on CLOCK_REALTIME. Its age is taken against that clock and
 * subtracted from CLOCK_MONOTONIC read right after, both here: a pause of the
 * caller between two clock reads (a garbage collection in JavaScript) would
 * otherwise move the arrival by the pause, before the time its request left. */
static napi_value stamp_ms(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  double at = -1;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_get_value_int32(env, argv[0], &fd) == napi_ok && fd >= 0) {
    struct timespec stamp;
    struct timespec real;
    struct timespec mono;
    if (ioctl(fd, SIOCGSTAMPNS, &stamp) == 0 && clock_gettime(CLOCK_REALTIME, &real) == 0 &&
        clock_gettime(CLOCK_MONOTONIC, &mono) == 0) {
      long long age = (long long)(real.tv_sec - stamp.tv_sec) * 1000000000LL + (real.tv_nsec - stamp.tv_nsec);
      if (age > 0 && age < MAX_AGE_NS)
        at = (double)mono.tv_sec * 1e3 + (double)mono.tv_nsec / 1e6 - (double)age / 1e6;
    }
  }
  napi_create_double(env, at, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "stampMs", NAPI_AUTO_LENGTH, stamp_ms, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "stampMs", fn) != napi_ok) return NULL;
  return exports;
}
