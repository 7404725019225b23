/*
 * The kernel's receive time of the datagram a UDP socket handed out last
 * (SIOCGSTAMPNS, socket(7)), as an age in milliseconds.
 *
 * node:dgram gives JavaScript a datagram when the event loop gets to it: after
 * the process wakes, and after the datagrams read before it are handled. Time
 * spent there is part of what a hop adds, and only the kernel saw it start. The
 * loop reads one datagram and runs its handler before it reads the next, so in
 * the handler this ioctl answers for that very datagram.
 *
 * The stamp is on CLOCK_REALTIME; the age is taken against the same clock here,
 * so the caller subtracts it from its monotonic now and never mixes clocks.
 */
#define NAPI_VERSION 8
#include <linux/sockios.h>
#include <node_api.h>
#include <sys/ioctl.h>
#include <time.h>

/* ageMs(fd): milliseconds since the kernel stamped the last datagram read from
 * fd; -1 when there is no stamp (none read yet, not a socket). The first call on
 * a socket turns its stamping on. A datagram that arrived before stamping was on
 * reads as just arrived (the kernel then answers with the current time). */
static napi_value age_ms(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  double age = -1;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_get_value_int32(env, argv[0], &fd) == napi_ok && fd >= 0) {
    struct timespec stamp;
    struct timespec now;
    if (ioctl(fd, SIOCGSTAMPNS, &stamp) == 0 && clock_gettime(CLOCK_REALTIME, &now) == 0) {
      age = (double)(now.tv_sec - stamp.tv_sec) * 1e3 + (double)(now.tv_nsec - stamp.tv_nsec) / 1e6;
    }
  }
  napi_create_double(env, age, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "ageMs", NAPI_AUTO_LENGTH, age_ms, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "ageMs", fn) != napi_ok) return NULL;
  return exports;
}
