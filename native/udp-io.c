/*
 * A UDP socket read in batches (recvmmsg(2)) and written with one sendmsg(2) per datagram.
 *
 * node:dgram hands JavaScript one datagram per callback: a callback scope, a Buffer and a
 * remote-info object per datagram, and a read until EAGAIN after each wake-up. At a few
 * thousand datagrams a second that is a large part of what a proxy costs (bench/README.md,
 * "Batched UDP reads"). Here one wake-up reads up to BATCH datagrams with one system call,
 * copies them into one Buffer and makes one call into JavaScript with their offsets, sources
 * and kernel receive stamps (SO_TIMESTAMPNS, in the same call: no ioctl per datagram).
 *
 * The Buffer is an arena of 256 KiB that batches fill one after the other, and a new one is made
 * only when the next batch does not fit: a Buffer made per wake-up (malloc, a backing store, its
 * sweep) was ~2.5% of sipspan's CPU at 2000 calls/s in a perf profile. Bytes once handed over are
 * never written again, so whatever JavaScript keeps of a batch (a send waiting for a name or a
 * connection) stays as it was. What it keeps holds the whole arena alive: the TCP write queue,
 * which can hold messages for long, copies what it queues (src/transport/tcp-connection.ts).
 *
 * Each datagram's header fields are indexed as it is copied (header-index.h), so the scanner in
 * JavaScript does not search the lines byte by byte.
 *
 * The socket is watched with a uv_poll_t on Node's own loop, so it lives and dies with the
 * event loop like any handle. Nothing here throws into JavaScript: failures are negative errno
 * values, for JavaScript to turn into the errors node:dgram would give.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "header-index.h"

/* Datagrams read per wake-up at most (libuv reads 32 per wake-up for node:dgram). */
#define BATCH 64
/* Room for the largest UDP payload (65,507 bytes over IPv4, 65,527 over IPv6): never truncated. */
#define SLOT_BYTES 65536
/* Numbers per datagram in the shared metadata: offset, length, port, address text length, stamp. */
#define META 5
/* Room for an address as text: an IPv6 address, '%' and an interface name. */
#define ADDR_TEXT 64
/* The arena's size: a new one holds this much, or the batch if that is larger. */
#define ARENA_BYTES (256 * 1024)
/* Chunks of one datagram at most; JavaScript joins longer lists first. */
#define MAX_CHUNKS 64
/* Ages past this are a step of the wall clock between the stamp and its reading, not a wait. */
#define MAX_AGE_NS 10000000000LL

typedef struct {
  int fd;
  int family;
  int stamps;
  int closing;
  napi_env env;
  napi_ref on_batch;
  napi_ref receiver;
  napi_async_context async_context;
  uv_poll_t poll;
  char *slots;
  /* The arena batches are copied into (a Buffer JavaScript has seen), its bytes, size and fill. */
  napi_ref arena;
  char *arena_data;
  size_t arena_size;
  size_t arena_used;
  /* Shared with JavaScript (ArrayBuffers it holds): rewritten for each batch. */
  double *meta;
  char *addr_text;
  int32_t *index;
  /* The environment's header names and byte classes (header-index.h). */
  const index_tables *tables;
  /* The source of the datagram read last (its port aside): its text is sent only when it changes. */
  struct sockaddr_storage last;
  int has_last;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
  char control[BATCH][CMSG_SPACE(sizeof(struct timespec))];
} udp_socket;

/* A literal address, with an optional %scope on IPv6, into sa; 0, or -EINVAL. */
static int parse_address(int family, const char *text, uint16_t port, struct sockaddr_storage *sa, socklen_t *len) {
  memset(sa, 0, sizeof *sa);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)sa;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    if (inet_pton(AF_INET, text, &a->sin_addr) != 1) return -EINVAL;
    *len = sizeof *a;
    return 0;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
  char host[ADDR_TEXT];
  snprintf(host, sizeof host, "%s", text);
  char *scope = strchr(host, '%');
  if (scope != NULL) {
    *scope++ = '\0';
    unsigned index = if_nametoindex(scope);
    a->sin6_scope_id = index != 0 ? index : (uint32_t)strtoul(scope, NULL, 10);
  }
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -EINVAL;
  *len = sizeof *a;
  return 0;
}

/* Same host as the last datagram's (the port aside)? */
static int same_source(const udp_socket *s, const struct sockaddr_storage *sa) {
  if (!s->has_last || s->last.ss_family != sa->ss_family) return 0;
  if (sa->ss_family == AF_INET)
    return ((const struct sockaddr_in *)&s->last)->sin_addr.s_addr == ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s->last;
  const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)sa;
  return a->sin6_scope_id == b->sin6_scope_id && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
}

/* The host as node:dgram writes it (a link-local IPv6 address with its %interface); its length. */
static int address_text(const struct sockaddr_storage *sa, char *out) {
  if (sa->ss_family == AF_INET) {
    if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, ADDR_TEXT) == NULL) return 0;
    return (int)strlen(out);
  }
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
  if (inet_ntop(AF_INET6, &a->sin6_addr, out, ADDR_TEXT) == NULL) return 0;
  size_t n = strlen(out);
  if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) && a->sin6_scope_id != 0) {
    char name[IF_NAMESIZE];
    if (if_indextoname(a->sin6_scope_id, name) != NULL)
      snprintf(out + n, ADDR_TEXT - n, "%%%s", name);
    else
      snprintf(out + n, ADDR_TEXT - n, "%%%u", a->sin6_scope_id);
    n = strlen(out);
  }
  return (int)n;
}

/* The kernel's receive stamp of msg on CLOCK_MONOTONIC in ms, given the clocks read after the read; -1 if none. */
static double stamp_ms(struct msghdr *msg, const struct timespec *real, const struct timespec *mono) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_TIMESTAMPNS) continue;
    struct timespec stamp;
    memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
    long long age = (long long)(real->tv_sec - stamp.tv_sec) * 1000000000LL + (real->tv_nsec - stamp.tv_nsec);
    if (age <= 0 || age >= MAX_AGE_NS) return -1;
    return (double)mono->tv_sec * 1e3 + (double)mono->tv_nsec / 1e6 - (double)age / 1e6;
  }
  return -1;
}

/* The arena with room for `bytes` more, into *out: the current one, or a new one; 0, or -1. */
static int arena_for(udp_socket *s, size_t bytes, napi_value *out) {
  napi_env env = s->env;
  if (s->arena != NULL && s->arena_size - s->arena_used >= bytes)
    return napi_get_reference_value(env, s->arena, out) == napi_ok && *out != NULL ? 0 : -1;
  size_t size = bytes > ARENA_BYTES ? bytes : ARENA_BYTES;
  void *data = NULL;
  napi_ref ref;
  if (napi_create_buffer(env, size, &data, out) != napi_ok || napi_create_reference(env, *out, 1, &ref) != napi_ok)
    return -1;
  if (s->arena != NULL) napi_delete_reference(env, s->arena);
  s->arena = ref;
  s->arena_data = data;
  s->arena_size = size;
  s->arena_used = 0;
  return 0;
}

static void deliver(udp_socket *s, int n) {
  struct timespec real = {0, 0};
  struct timespec mono = {0, 0};
  if (s->stamps) {
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
  }
  size_t total = 0;
  for (int i = 0; i < n; i++) total += s->msgs[i].msg_len;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value buffer;
  if (arena_for(s, total, &buffer) != 0) {
    napi_close_handle_scope(env, scope);
    return;
  }
  char *data = s->arena_data + s->arena_used;
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    double *m = s->meta + i * META;
    size_t len = s->msgs[i].msg_len;
    if (len > 0) memcpy(data + at, s->iov[i].iov_base, len);
    const struct sockaddr_storage *from = &s->from[i];
    m[0] = (double)(s->arena_used + at);
    m[1] = (double)len;
    m[2] = from->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)from)->sin_port)
                                      : ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
    if (same_source(s, from)) {
      m[3] = 0;
    } else {
      m[3] = address_text(from, s->addr_text + i * ADDR_TEXT);
      s->last = *from;
      s->has_last = m[3] > 0;
    }
    m[4] = s->stamps ? stamp_ms(&s->msgs[i].msg_hdr, &real, &mono) : -1;
    index_headers(s->tables, (const uint8_t *)data + at, (int)len, (int32_t)(s->arena_used + at),
                  s->index + i * INDEX_STRIDE);
    at += len;
  }
  s->arena_used += total;
  napi_value fn, receiver, argv[2], result;
  napi_get_reference_value(env, s->on_batch, &fn);
  napi_get_reference_value(env, s->receiver, &receiver);
  argv[0] = buffer;
  napi_create_int32(env, n, &argv[1]);
  /* A callback scope, as for node:dgram's callbacks: process.nextTick and promise jobs run after it. */
  if (napi_make_callback(env, s->async_context, receiver, fn, 2, argv, &result) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  udp_socket *s = (udp_socket *)poll->data;
  if (s->closing) return;
  for (int i = 0; i < BATCH; i++) {
    struct msghdr *h = &s->msgs[i].msg_hdr;
    h->msg_name = &s->from[i];
    h->msg_namelen = sizeof s->from[i];
    h->msg_iov = &s->iov[i];
    h->msg_iovlen = 1;
    h->msg_control = s->stamps ? s->control[i] : NULL;
    h->msg_controllen = s->stamps ? sizeof s->control[i] : 0;
    h->msg_flags = 0;
  }
  /* An error (EAGAIN, or a pending ICMP error) is cleared by the read itself: level-triggered polling wakes again if more waits. */
  int n = recvmmsg(s->fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
  if (n > 0) deliver(s, n);
}

static void on_closed(uv_handle_t *handle) {
  udp_socket *s = (udp_socket *)handle->data;
  free(s->slots);
  free(s);
}

/*
 * uv_close takes the descriptor out of the loop's epoll set at once (uv__poll_close), so it is
 * closed here, before the caller goes on: the port is free again when close() returns, as it is
 * when node:dgram's close calls back. The memory waits for libuv's close callback.
 */
static void close_now(udp_socket *s) {
  uv_close((uv_handle_t *)&s->poll, on_closed);
  close(s->fd);
  s->fd = -1;
}

static napi_value int_value(napi_env env, int v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

/*
 * open(family 4|6, host, port, reusePort, bufferBytes, stamps, onBatch, receiver):
 * [handle, meta Float64Array, addressText Buffer, port, receiveBufferBytes, sendBufferBytes, stamps on, fd,
 * header index Int32Array (header-index.h)],
 * or [-errno, syscall]. onBatch(buffer, count) is called with `receiver` as this.
 */
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8) return NULL;
  int32_t family = 4, port = 0, buffer_bytes = 0;
  bool reuse_port = false, stamps = false;
  char host[ADDR_TEXT];
  size_t host_len = 0;
  napi_get_value_int32(env, argv[0], &family);
  napi_get_value_string_latin1(env, argv[1], host, sizeof host, &host_len);
  napi_get_value_int32(env, argv[2], &port);
  napi_get_value_bool(env, argv[3], &reuse_port);
  napi_get_value_int32(env, argv[4], &buffer_bytes);
  napi_get_value_bool(env, argv[5], &stamps);
  int af = family == 6 ? AF_INET6 : AF_INET;
  struct sockaddr_storage local;
  socklen_t local_len = 0;
  napi_value out;
  napi_create_array_with_length(env, 9, &out);
  if (parse_address(af, host, (uint16_t)port, &local, &local_len) != 0) {
    napi_set_element(env, out, 0, int_value(env, -EINVAL));
    return out;
  }
  int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const char *failed = "socket";
  int one = 1;
  if (fd < 0) goto fail;
  failed = "setsockopt";
  if (af == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) goto fail;
  if (reuse_port && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
                     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0))
    goto fail;
  if (buffer_bytes > 0) {
    /* As node:dgram: the kernel caps it at net.core.rmem_max / wmem_max, read back below. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (stamps && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) stamps = false;
  failed = "bind";
  if (bind(fd, (struct sockaddr *)&local, local_len) != 0) goto fail;
  failed = "getsockname";
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) goto fail;
  int bound_port = af == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port)
                                 : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  int rcv = -1, snd = -1;
  socklen_t optlen = sizeof rcv;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &optlen);
  optlen = sizeof snd;
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, &optlen);

  udp_socket *s = calloc(1, sizeof *s);
  char *slots = malloc((size_t)BATCH * SLOT_BYTES);
  failed = "malloc";
  if (s == NULL || slots == NULL) {
    free(s);
    free(slots);
    errno = ENOMEM;
    goto fail;
  }
  s->fd = fd;
  s->family = af;
  s->stamps = stamps;
  s->env = env;
  s->slots = slots;
  index_tables *tables = NULL;
  napi_get_instance_data(env, (void **)&tables);
  s->tables = tables;
  for (int i = 0; i < BATCH; i++) {
    s->iov[i].iov_base = slots + (size_t)i * SLOT_BYTES;
    s->iov[i].iov_len = SLOT_BYTES;
  }
  napi_value meta_buffer, meta, text, index_buffer, index, handle, name;
  void *data;
  napi_create_arraybuffer(env, (size_t)BATCH * META * sizeof(double), &data, &meta_buffer);
  s->meta = data;
  napi_create_typedarray(env, napi_float64_array, (size_t)BATCH * META, meta_buffer, 0, &meta);
  napi_create_buffer(env, (size_t)BATCH * ADDR_TEXT, &data, &text);
  s->addr_text = data;
  napi_create_arraybuffer(env, (size_t)BATCH * INDEX_STRIDE * sizeof(int32_t), &data, &index_buffer);
  s->index = data;
  napi_create_typedarray(env, napi_int32_array, (size_t)BATCH * INDEX_STRIDE, index_buffer, 0, &index);
  napi_create_external(env, s, NULL, NULL, &handle);
  napi_create_reference(env, argv[6], 1, &s->on_batch);
  napi_create_reference(env, argv[7], 1, &s->receiver);
  napi_create_string_latin1(env, "sipspan:udp", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &s->async_context);
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  int err = uv_poll_init_socket(loop, &s->poll, fd);
  s->poll.data = s;
  if (err == 0) {
    err = uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (err != 0) s->closing = 1;
  }
  if (err != 0) {
    /* Nothing was started, so nothing calls back: undo here (a poll that was initialised is closed through libuv). */
    napi_delete_reference(env, s->on_batch);
    napi_delete_reference(env, s->receiver);
    napi_async_destroy(env, s->async_context);
    if (s->closing) {
      close_now(s);
    } else {
      close(fd);
      free(s->slots);
      free(s);
    }
    napi_create_string_latin1(env, "uv_poll", NAPI_AUTO_LENGTH, &name);
    napi_set_element(env, out, 0, int_value(env, err));
    napi_set_element(env, out, 1, name);
    return out;
  }
  napi_value stamps_on;
  napi_get_boolean(env, stamps, &stamps_on);
  napi_set_element(env, out, 0, handle);
  napi_set_element(env, out, 1, meta);
  napi_set_element(env, out, 2, text);
  napi_set_element(env, out, 3, int_value(env, bound_port));
  napi_set_element(env, out, 4, int_value(env, rcv));
  napi_set_element(env, out, 5, int_value(env, snd));
  napi_set_element(env, out, 6, stamps_on);
  napi_set_element(env, out, 7, int_value(env, fd));
  napi_set_element(env, out, 8, index);
  return out;

fail:;
  int code = -errno;
  if (fd >= 0) close(fd);
  napi_value syscall;
  napi_create_string_latin1(env, failed, NAPI_AUTO_LENGTH, &syscall);
  napi_set_element(env, out, 0, int_value(env, code));
  napi_set_element(env, out, 1, syscall);
  return out;
}

/* send(handle, chunks, port, address): 0, or -errno. One datagram, its chunks gathered by the kernel. */
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  udp_socket *s = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL)
    return int_value(env, -EINVAL);
  if (s->closing) return int_value(env, -EBADF);
  uint32_t count = 0;
  int32_t port = 0;
  char host[ADDR_TEXT];
  size_t host_len = 0;
  napi_get_array_length(env, argv[1], &count);
  napi_get_value_int32(env, argv[2], &port);
  if (napi_get_value_string_latin1(env, argv[3], host, sizeof host, &host_len) != napi_ok)
    return int_value(env, -EINVAL);
  if (count > MAX_CHUNKS) return int_value(env, -EMSGSIZE);
  if (port <= 0 || port > 65535) return int_value(env, -EINVAL);
  struct sockaddr_storage to;
  socklen_t to_len = 0;
  if (parse_address(s->family, host, (uint16_t)port, &to, &to_len) != 0) return int_value(env, -EINVAL);
  struct iovec iov[MAX_CHUNKS];
  for (uint32_t i = 0; i < count; i++) {
    napi_value chunk;
    if (napi_get_element(env, argv[1], i, &chunk) != napi_ok ||
        napi_get_buffer_info(env, chunk, &iov[i].iov_base, &iov[i].iov_len) != napi_ok)
      return int_value(env, -EINVAL);
  }
  struct msghdr h;
  memset(&h, 0, sizeof h);
  h.msg_name = &to;
  h.msg_namelen = to_len;
  h.msg_iov = iov;
  h.msg_iovlen = count;
  ssize_t sent;
  do {
    sent = sendmsg(s->fd, &h, MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  return int_value(env, sent < 0 ? -errno : 0);
}

/* close(handle): stops reading and closes the descriptor at once; the memory goes when libuv has closed the poll. */
static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_socket *s = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL || s->closing)
    return NULL;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  napi_delete_reference(env, s->on_batch);
  napi_delete_reference(env, s->receiver);
  if (s->arena != NULL) napi_delete_reference(env, s->arena);
  s->arena = NULL;
  napi_async_destroy(env, s->async_context);
  close_now(s);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (create_tables(env) != 0) return NULL;
  if (napi_create_function(env, "open", NAPI_AUTO_LENGTH, open_socket, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "open", fn) != napi_ok)
    return NULL;
  if (napi_create_function(env, "send", NAPI_AUTO_LENGTH, send_datagram, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "send", fn) != napi_ok)
    return NULL;
  if (napi_create_function(env, "close", NAPI_AUTO_LENGTH, close_socket, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "close", fn) != napi_ok)
    return NULL;
  if (napi_create_function(env, "configureIndex", NAPI_AUTO_LENGTH, configure_index, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "configureIndex", fn) != napi_ok)
    return NULL;
  if (napi_create_function(env, "index", NAPI_AUTO_LENGTH, index_message, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "index", fn) != napi_ok)
    return NULL;
  napi_value batch, stride;
  napi_create_int32(env, BATCH, &batch);
  napi_set_named_property(env, exports, "batch", batch);
  napi_create_int32(env, INDEX_STRIDE, &stride);
  napi_set_named_property(env, exports, "indexStride", stride);
  return exports;
}
