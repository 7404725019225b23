/*
 * The header fields of a SIP message found in C, for the datagrams of a batch (udp-io.c).
 *
 * src/wire/scan.ts reads a message byte by byte in JavaScript: about 1 µs for an 860-byte INVITE,
 * most of it the search for each line's end. Here memchr(3) finds the line ends and a short loop
 * the field names, while the datagram is still in cache from its copy into the arena. JavaScript
 * then copies the offsets into its SipMessage (src/wire/header-index.ts) and reads the start line
 * itself.
 *
 * Only the plain shape is indexed: a start line, then field lines `token *WSP ":" value`, each
 * ended by LF or CRLF, then an empty line. Anything else (CR or LF before the start line, a folded
 * line, a line that is not a field, no empty line, more than INDEX_FIELDS fields) is left to the
 * scanner in JavaScript, which says what is wrong with it. So this code decides nothing about SIP
 * on its own, and where it indexes, it must give what the scanner gives: the differential test
 * (test/transport/header-index.test.ts) holds it to that over the RFC 4475 / 5118 corpus and
 * mutations of it. The byte classes and the header names come from JavaScript (configure).
 *
 * One index per datagram, INDEX_STRIDE int32s (src/wire/header-index.ts has the same layout):
 *
 *   [ fields or -1 | startLineEnd | headersEnd | bodyStart | fields × FIELD_STRIDE ... ]
 *     field: [ id | lineStart | nameEnd | valueStart | valueEnd | lineEnd ]
 *
 * Offsets are `base` plus the offset in the datagram: where the datagram lies in the batch's Buffer.
 */
#ifndef SIPSPAN_HEADER_INDEX_H
#define SIPSPAN_HEADER_INDEX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_FIELDS 64
#define INDEX_HEAD 4
#define FIELD_STRIDE 6
#define INDEX_STRIDE (INDEX_HEAD + INDEX_FIELDS * FIELD_STRIDE)
/* A header name longer than the longest known one is never a known one. */
#define NAME_BYTES 32
#define MAX_NAMES 64

/*
 * What the index is given by JavaScript, one per Node environment (its instance data: a worker's
 * module never shares a main thread's tables while they are written).
 */
typedef struct {
  /* Nothing is indexed until JavaScript has given the tables. */
  int ready;
  /* RFC 3261 §25.1 token characters, 1 or 0 per byte (src/wire/chars.ts: IS_TOKEN). */
  uint8_t is_token[256];
  /* The known header names in lower case and their ids (src/wire/header-names.ts). */
  char name_text[MAX_NAMES][NAME_BYTES];
  int name_length[MAX_NAMES];
  int32_t name_id[MAX_NAMES];
  int name_count;
  /*
   * The names by length and first letter (its low five bits): the first name of each such pair,
   * and the next name of the same pair, as name numbers plus one (0: none). Known names rarely
   * share both, so a field's name is compared with one known name at most, most of the time (a
   * scan of all of them was half of this code's time for an INVITE).
   */
  uint8_t first_name[NAME_BYTES + 1][32];
  uint8_t next_name[MAX_NAMES];
} index_tables;

/* The id of the header name at p, n bytes, as identifyHeader gives it; 0 (OTHER) when unknown. */
static int32_t identify_name(const index_tables *t, const uint8_t *p, int n) {
  if (n > NAME_BYTES) return 0;
  for (int next = t->first_name[n][p[0] & 0x1f]; next != 0; next = t->next_name[next - 1]) {
    const int k = next - 1;
    const char *lit = t->name_text[k];
    int i = 0;
    for (; i < n; i++) {
      uint8_t b = p[i];
      if (b >= 0x41 && b <= 0x5a) b |= 0x20;
      if (b != (uint8_t)lit[i]) break;
    }
    if (i == n) return t->name_id[k];
  }
  return 0;
}

/*
 * Index the message d[0, len) into out (INDEX_STRIDE int32s); returns the number of fields, or -1
 * when the message is not of the plain shape (out[0] says the same).
 */
static int index_headers(const index_tables *t, const uint8_t *d, int len, int32_t base, int32_t *out) {
  out[0] = -1;
  if (t == NULL || !t->ready || len <= 0 || d[0] == '\r' || d[0] == '\n') return -1;
  const uint8_t *end = d + len;
  const uint8_t *lf = memchr(d, '\n', (size_t)len);
  if (lf == NULL) return -1;
  const uint8_t *p = lf + 1;
  int count = 0;
  int32_t *f = out + INDEX_HEAD;
  for (;;) {
    if (p >= end) return -1;
    uint8_t b = *p;
    if (b == '\n' || (b == '\r' && p + 1 < end && p[1] == '\n')) {
      out[1] = base + (int32_t)(lf + 1 - d);
      out[2] = base + (int32_t)(p - d);
      out[3] = base + (int32_t)(p - d) + (b == '\n' ? 1 : 2);
      out[0] = count;
      return count;
    }
    /* A folded line (RFC 3261 §7.3.1) or one more field than there is room for: JavaScript's. */
    if (b == ' ' || b == '\t' || count == INDEX_FIELDS) return -1;
    const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) return -1;
    const uint8_t *content_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    const uint8_t *q = p;
    while (q < content_end && t->is_token[*q]) q++;
    const uint8_t *name_end = q;
    while (q < content_end && (*q == ' ' || *q == '\t')) q++;
    if (name_end == p || q >= content_end || *q != ':') return -1;
    q++;
    while (q < content_end && (*q == ' ' || *q == '\t')) q++;
    const uint8_t *value_end = content_end;
    while (value_end > q && (value_end[-1] == ' ' || value_end[-1] == '\t')) value_end--;
    f[0] = identify_name(t, p, (int)(name_end - p));
    f[1] = base + (int32_t)(p - d);
    f[2] = base + (int32_t)(name_end - d);
    f[3] = base + (int32_t)(q - d);
    f[4] = base + (int32_t)(value_end - d);
    f[5] = base + (int32_t)(eol + 1 - d);
    f += FIELD_STRIDE;
    count++;
    p = eol + 1;
  }
}

/*
 * configure(isToken Uint8Array(256), names string[], ids number[]): the byte classes and the known
 * header names, from the scanner's own tables. Names past MAX_NAMES or NAME_BYTES are not taken,
 * and then nothing is indexed: JavaScript's scanner reads every message, as before.
 */
static napi_value configure_index(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_value result;
  napi_get_boolean(env, false, &result);
  index_tables *t = NULL;
  if (napi_get_instance_data(env, (void **)&t) != napi_ok || t == NULL) return result;
  t->ready = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return result;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || length != 256)
    return result;
  memcpy(t->is_token, data, 256);
  uint32_t count = 0;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok || count > MAX_NAMES) return result;
  for (uint32_t k = 0; k < count; k++) {
    napi_value name, id;
    size_t n = 0;
    char text[NAME_BYTES + 2];
    if (napi_get_element(env, argv[1], k, &name) != napi_ok ||
        napi_get_value_string_latin1(env, name, text, sizeof text, &n) != napi_ok || n == 0 || n > NAME_BYTES ||
        napi_get_element(env, argv[2], k, &id) != napi_ok ||
        napi_get_value_int32(env, id, &t->name_id[k]) != napi_ok)
      return result;
    memcpy(t->name_text[k], text, n);
    t->name_length[k] = (int)n;
  }
  t->name_count = (int)count;
  memset(t->first_name, 0, sizeof t->first_name);
  /* Chained in reverse, so each chain lists its names in the order given. */
  for (int k = t->name_count - 1; k >= 0; k--) {
    uint8_t *head = &t->first_name[t->name_length[k]][(uint8_t)t->name_text[k][0] & 0x1f];
    t->next_name[k] = *head;
    *head = (uint8_t)(k + 1);
  }
  t->ready = 1;
  napi_get_boolean(env, true, &result);
  return result;
}

static void free_tables(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* The environment's tables, empty until configure: 0, or -1. */
static int create_tables(napi_env env) {
  index_tables *t = calloc(1, sizeof *t);
  if (t == NULL) return -1;
  if (napi_set_instance_data(env, t, free_tables, NULL) != napi_ok) {
    free(t);
    return -1;
  }
  return 0;
}

/*
 * index(buffer, start, end, out Int32Array): what a batch's index holds for the message
 * buffer[start, end), written to out (INDEX_STRIDE int32s at least); the number of fields, or -1.
 * For tests, which hold it to the scanner in JavaScript.
 */
static napi_value index_message(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_value result;
  int32_t start = 0, stop = 0, fields = -1;
  void *bytes = NULL, *out = NULL;
  size_t length = 0, out_length = 0;
  napi_typedarray_type type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 4 &&
      napi_get_buffer_info(env, argv[0], &bytes, &length) == napi_ok &&
      napi_get_value_int32(env, argv[1], &start) == napi_ok && napi_get_value_int32(env, argv[2], &stop) == napi_ok &&
      napi_get_typedarray_info(env, argv[3], &type, &out_length, &out, NULL, NULL) == napi_ok &&
      type == napi_int32_array && out_length >= INDEX_STRIDE && start >= 0 && start <= stop &&
      (size_t)stop <= length) {
    index_tables *t = NULL;
    napi_get_instance_data(env, (void **)&t);
    fields = index_headers(t, (const uint8_t *)bytes + start, stop - start, start, (int32_t *)out);
  }
  napi_create_int32(env, fields, &result);
  return result;
}

#endif
