/*
 * The audit event scanner's fast path (k8s-scan.ts), compiled to WebAssembly: checks that a line is
 * a JSON object as JSON.parse decides and records where the fields auditfwd needs are, with the
 * same results as the JavaScript walk. It only ever answers "yes, and here they are" or "ask the
 * JavaScript walk": a line that is not JSON, a key written with escapes, nesting deeper than
 * MAX_DEPTH or a line longer than MAX_BYTES all go to the walk, which decides.
 *
 * Two steps, as simdjson's:
 * 1. Where every string starts and ends, 64 bytes at a time with SIMD and no branch per string (in
 *    JavaScript, finding a string's end costs a mispredicted branch per string, and an event has
 *    about 80 strings). The escape logic is simdjson's (json_escape_scanner.h): a backslash escapes
 *    the byte after it unless it is itself escaped, decided for a whole block by one subtraction.
 * 2. The grammar, byte by byte outside strings, jumping over each string to its closing quote, and
 *    the fields picked on the way, as k8s-scan.ts picks them (the last of duplicate keys wins).
 *
 * Built by scripts/build-k8s-scan-wasm.mjs into k8s-scan-wasm.ts (Debian's clang-14 and lld-14);
 * test/transforms/k8s-scan-wasm.test.ts checks that the committed module is this file's.
 */
#include <stdint.h>
#include <wasm_simd128.h>

/* The longest line scanned here; the JavaScript walk scans a longer one. */
#define MAX_BYTES (128 * 1024)
/* Zero bytes after the line: the last block's read, a \u's four digits, the header's word reads. */
#define PADDING 80
#define MAX_DEPTH 1024
#define ODD_BITS 0xAAAAAAAAAAAAAAAAULL

/* Field ids: the same numbers as k8s-scan.ts. */
enum {
  F_OTHER = 0, F_KIND = 1, F_API_VERSION, F_AUDIT_ID, F_STAGE, F_VERB, F_USER, F_OBJECT_REF, F_RESPONSE_STATUS, F_SOURCE_IPS,
  F_STAGE_TS, F_RECEIVED_TS, F_TS, F_USERNAME, F_RESOURCE, F_NAMESPACE, F_NAME, F_CODE, F_SOURCE_IP, FIELD_COUNT
};
#define ABSENT (-1)
#define NOT_STRING (-2)
enum { IN_TOP, IN_USER, IN_OBJECT_REF, IN_RESPONSE_STATUS };

static uint8_t line[MAX_BYTES + PADDING] __attribute__((aligned(16)));
/* The positions of the line's unescaped quotes in order, then two entries of -1. */
static int32_t quote_at[MAX_BYTES + 2];
/* One bit per byte, set for each backslash inside a string. */
static uint64_t backslash_bits[(MAX_BYTES + PADDING + 63) / 64];
static uint8_t stack[MAX_DEPTH];
/* Per field: where its string's content starts (ABSENT, NOT_STRING), where it ends, whether it has escapes. */
static int32_t from[FIELD_COUNT];
static int32_t to[FIELD_COUNT];
static uint8_t esc[FIELD_COUNT];
/* responseStatus.code's number, start and end; -1 when there is none. */
static int32_t code_at[2];
/* The next string's index in quote_at. */
static int32_t qc;
static int any_backslash;

__attribute__((export_name("line"))) uint8_t *line_at(void) { return line; }
__attribute__((export_name("from"))) int32_t *from_at(void) { return from; }
__attribute__((export_name("to"))) int32_t *to_at(void) { return to; }
__attribute__((export_name("esc"))) uint8_t *esc_at(void) { return esc; }
__attribute__((export_name("code"))) int32_t *code_at_(void) { return code_at; }
__attribute__((export_name("maxBytes"))) int32_t max_bytes(void) { return MAX_BYTES; }

/*
 * The header (k8s-header.ts writes the same bytes): the fixed parts, given once by the writer as
 * three lengths and their bytes (`<PRI>1 `, ` HOSTNAME APP-NAME PROCID `, ` SD-ELEMENTs[SD-ID
 * auditID="`), and where it is written.
 */
#define PARTS_BYTES 4096
#define HEADER_BYTES 16384
static int32_t part_len[3];
static uint8_t parts[PARTS_BYTES];
static uint8_t header_out[HEADER_BYTES];
__attribute__((export_name("partLengths"))) int32_t *part_lengths_at(void) { return part_len; }
__attribute__((export_name("parts"))) uint8_t *parts_at(void) { return parts; }
__attribute__((export_name("partsBytes"))) int32_t parts_bytes(void) { return PARTS_BYTES; }
__attribute__((export_name("header"))) uint8_t *header_at(void) { return header_out; }
__attribute__((export_name("headerBytes"))) int32_t header_bytes(void) { return HEADER_BYTES; }

static inline uint64_t mask64(v128_t a, v128_t b, v128_t c, v128_t d) {
  return (uint64_t)(uint16_t)wasm_i8x16_bitmask(a) | ((uint64_t)(uint16_t)wasm_i8x16_bitmask(b) << 16) |
         ((uint64_t)(uint16_t)wasm_i8x16_bitmask(c) << 32) | ((uint64_t)(uint16_t)wasm_i8x16_bitmask(d) << 48);
}

/* Bit i of the result is the XOR of bits 0..i: set from an opening quote up to its closing one. */
static inline uint64_t prefix_xor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

static inline int is_hex(uint8_t c) { return (uint8_t)(c - '0') < 10 || (uint8_t)((c | 0x20) - 'a') < 6; }
static inline int is_digit(uint8_t c) { return (uint8_t)(c - '0') < 10; }

static inline int is_escape(uint8_t c) {
  return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't';
}

/*
 * Step 1: fills quote_at and backslash_bits. Returns the number of quotes, or -1 when a string holds
 * a control character or an escape JSON does not allow, or does not end. For a line whose
 * backslashes are all inside strings (every valid JSON text) the quotes pair up as its strings do;
 * any other line fails step 2.
 */
static int32_t find_strings(int32_t len) {
  const v128_t vq = wasm_i8x16_splat('"'), vb = wasm_i8x16_splat('\\'), vc = wasm_i8x16_splat(0x20);
  uint64_t next_is_escaped = 0, prev_in_string = 0, err = 0, any = 0;
  int32_t n = 0;
  for (int32_t base = 0; base < len; base += 64) {
    const uint8_t *p = line + base;
    const v128_t x0 = wasm_v128_load(p), x1 = wasm_v128_load(p + 16), x2 = wasm_v128_load(p + 32), x3 = wasm_v128_load(p + 48);
    const uint64_t q = mask64(wasm_i8x16_eq(x0, vq), wasm_i8x16_eq(x1, vq), wasm_i8x16_eq(x2, vq), wasm_i8x16_eq(x3, vq));
    const uint64_t bs = mask64(wasm_i8x16_eq(x0, vb), wasm_i8x16_eq(x1, vb), wasm_i8x16_eq(x2, vb), wasm_i8x16_eq(x3, vb));
    const uint64_t ctl = mask64(wasm_u8x16_lt(x0, vc), wasm_u8x16_lt(x1, vc), wasm_u8x16_lt(x2, vc), wasm_u8x16_lt(x3, vc));
    uint64_t escaped = 0;
    if (bs != 0 || next_is_escaped != 0) {
      const uint64_t potential = bs & ~next_is_escaped;
      const uint64_t code = (((potential << 1) | ODD_BITS) - potential) ^ ODD_BITS;
      escaped = code ^ (bs | next_is_escaped);
      next_is_escaped = (code & bs) >> 63;
    }
    uint64_t quote = q & ~escaped;
    const uint64_t in_string = prefix_xor(quote) ^ prev_in_string;
    prev_in_string = (uint64_t)((int64_t)in_string >> 63);
    err |= ctl & in_string;
    for (uint64_t e = escaped & in_string; e != 0; e &= e - 1) {
      const int k = __builtin_ctzll(e);
      const uint8_t c = p[k];
      if (c == 'u' ? !(is_hex(p[k + 1]) && is_hex(p[k + 2]) && is_hex(p[k + 3]) && is_hex(p[k + 4])) : !is_escape(c)) err = 1;
    }
    const uint64_t in_string_backslashes = bs & in_string;
    backslash_bits[base >> 6] = in_string_backslashes;
    any |= in_string_backslashes;
    for (; quote != 0; quote &= quote - 1) quote_at[n++] = base + __builtin_ctzll(quote);
  }
  any_backslash = any != 0;
  return err != 0 || prev_in_string != 0 ? -1 : n;
}

/* Whether a string's content, bytes [s, e), holds a backslash. */
static inline int has_backslash(int32_t s, int32_t e) {
  if (!any_backslash || s >= e) return 0;
  const int32_t first = s >> 6, last = (e - 1) >> 6;
  for (int32_t w = first; w <= last; w++) {
    uint64_t m = backslash_bits[w];
    if (w == first) m &= ~0ULL << (s & 63);
    if (w == last) m &= ~0ULL >> (63 - ((e - 1) & 63));
    if (m != 0) return 1;
  }
  return 0;
}

static inline int32_t skip_ws(int32_t i) {
  for (;;) {
    const uint8_t c = line[i];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return i;
    i++;
  }
}

/* The closing quote of the string whose opening quote is at `i`, or -1: strings are met in order. */
static inline int32_t string_close(int32_t i) {
  if (quote_at[qc] != i) return -1;
  const int32_t e = quote_at[qc + 1];
  qc += 2;
  return e;
}

/* Index after a JSON number starting at `i`, or -1. */
static int32_t number_end(int32_t i) {
  const uint8_t *b = line;
  if (b[i] == '-') i++;
  if (b[i] == '0') i++;
  else if (b[i] >= '1' && b[i] <= '9') {
    do i++;
    while (is_digit(b[i]));
  } else return -1;
  if (b[i] == '.') {
    if (!is_digit(b[++i])) return -1;
    do i++;
    while (is_digit(b[i]));
  }
  if (b[i] == 'e' || b[i] == 'E') {
    i++;
    if (b[i] == '+' || b[i] == '-') i++;
    if (!is_digit(b[i])) return -1;
    do i++;
    while (is_digit(b[i]));
  }
  return i;
}

/* Index after `true`, `false` or `null` at `i`, or -1. */
static int32_t literal_end(int32_t i) {
  const uint8_t *b = line;
  if (b[i] == 't') return b[i + 1] == 'r' && b[i + 2] == 'u' && b[i + 3] == 'e' ? i + 4 : -1;
  if (b[i] == 'f') return b[i + 1] == 'a' && b[i + 2] == 'l' && b[i + 3] == 's' && b[i + 4] == 'e' ? i + 5 : -1;
  if (b[i] == 'n') return b[i + 1] == 'u' && b[i + 2] == 'l' && b[i + 3] == 'l' ? i + 4 : -1;
  return -1;
}

/* Index after the JSON value at `i`, or -1 (not JSON, or nested deeper than MAX_DEPTH). */
static int32_t value_end(int32_t i) {
  int32_t depth = 0;
  uint8_t open = 0;
  int key = 0;
  for (;;) {
    uint8_t c = line[i];
    if (key) {
      if (c != '"') return -1;
      const int32_t e = string_close(i);
      if (e < 0) return -1;
      i = skip_ws(e + 1);
      if (line[i] != ':') return -1;
      i = skip_ws(i + 1);
      key = 0;
      c = line[i];
    }
    if (c == '"') {
      const int32_t e = string_close(i);
      if (e < 0) return -1;
      i = e + 1;
    } else if (c == '{' || c == '[') {
      i = skip_ws(i + 1);
      if (line[i] == c + 2) i++;
      else {
        if (depth == MAX_DEPTH) return -1;
        stack[depth++] = open;
        open = c;
        key = c == '{';
        continue;
      }
    } else if (c == '-' || is_digit(c)) {
      i = number_end(i);
      if (i < 0) return -1;
    } else {
      i = literal_end(i);
      if (i < 0) return -1;
    }
    // After a value: close containers until one goes on with a comma.
    for (;;) {
      if (depth == 0) return i;
      i = skip_ws(i);
      const uint8_t d = line[i];
      if (d == ',') {
        i = skip_ws(i + 1);
        key = open == '{';
        break;
      }
      if (d != open + 2) return -1;
      open = stack[--depth];
      i++;
    }
  }
}

static inline int named(int32_t s, const char *name, int32_t n) {
  for (int32_t k = 0; k < n; k++)
    if (line[s + k] != (uint8_t)name[k]) return 0;
  return 1;
}

/* The id of the key in bytes [s, s + n) of an object of kind `in`. */
static int key_id(int in, int32_t s, int32_t n) {
  switch (in) {
    case IN_TOP:
      switch (n) {
        case 4:
          if (named(s, "kind", 4)) return F_KIND;
          if (named(s, "verb", 4)) return F_VERB;
          if (named(s, "user", 4)) return F_USER;
          return F_OTHER;
        case 5: return named(s, "stage", 5) ? F_STAGE : F_OTHER;
        case 7: return named(s, "auditID", 7) ? F_AUDIT_ID : F_OTHER;
        case 9:
          if (named(s, "objectRef", 9)) return F_OBJECT_REF;
          if (named(s, "sourceIPs", 9)) return F_SOURCE_IPS;
          if (named(s, "timestamp", 9)) return F_TS;
          return F_OTHER;
        case 10: return named(s, "apiVersion", 10) ? F_API_VERSION : F_OTHER;
        case 14:
          if (named(s, "responseStatus", 14)) return F_RESPONSE_STATUS;
          if (named(s, "stageTimestamp", 14)) return F_STAGE_TS;
          return F_OTHER;
        case 24: return named(s, "requestReceivedTimestamp", 24) ? F_RECEIVED_TS : F_OTHER;
      }
      return F_OTHER;
    case IN_USER: return n == 8 && named(s, "username", 8) ? F_USERNAME : F_OTHER;
    case IN_OBJECT_REF:
      if (n == 8 && named(s, "resource", 8)) return F_RESOURCE;
      if (n == 9 && named(s, "namespace", 9)) return F_NAMESPACE;
      if (n == 4 && named(s, "name", 4)) return F_NAME;
      return F_OTHER;
    case IN_RESPONSE_STATUS: return n == 4 && named(s, "code", 4) ? F_CODE : F_OTHER;
  }
  return F_OTHER;
}

/* Records field `id`'s string (NOT_STRING for any other value); the end of the value or -1. */
static int32_t pick_string(int32_t i, int id) {
  if (line[i] != '"') {
    from[id] = NOT_STRING;
    return value_end(i);
  }
  const int32_t e = string_close(i);
  if (e < 0) return -1;
  from[id] = i + 1;
  to[id] = e;
  esc[id] = (uint8_t)has_backslash(i + 1, e);
  return e + 1;
}

static int32_t members(int32_t i, int in);

/* sourceIPs[0] when it is a string, the rest of the array checked. */
static int32_t pick_first_ip(int32_t i) {
  from[F_SOURCE_IP] = ABSENT;
  if (line[i] != '[') return value_end(i);
  i = skip_ws(i + 1);
  if (line[i] == ']') return i + 1;
  i = pick_string(i, F_SOURCE_IP);
  for (;;) {
    if (i < 0) return -1;
    i = skip_ws(i);
    if (line[i] == ']') return i + 1;
    if (line[i] != ',') return -1;
    i = value_end(skip_ws(i + 1));
  }
}

static int32_t pick(int32_t i, int id) {
  switch (id) {
    case F_USER:
      from[F_USERNAME] = ABSENT;
      return line[i] == '{' ? members(i, IN_USER) : value_end(i);
    case F_OBJECT_REF:
      from[F_RESOURCE] = from[F_NAMESPACE] = from[F_NAME] = ABSENT;
      return line[i] == '{' ? members(i, IN_OBJECT_REF) : value_end(i);
    case F_RESPONSE_STATUS:
      code_at[0] = -1;
      return line[i] == '{' ? members(i, IN_RESPONSE_STATUS) : value_end(i);
    case F_SOURCE_IPS: return pick_first_ip(i);
    case F_CODE:
      if (line[i] == '-' || is_digit(line[i])) {
        const int32_t e = number_end(i);
        if (e < 0) return -1;
        code_at[0] = i;
        code_at[1] = e;
        return e;
      }
      code_at[0] = -1;
      return value_end(i);
  }
  return pick_string(i, id);
}

/* The members of the object whose '{' is at `i`, fields picked as `in` says; the end of the object or -1. */
static int32_t members(int32_t i, int in) {
  i = skip_ws(i + 1);
  if (line[i] == '}') return i + 1;
  for (;;) {
    if (line[i] != '"') return -1;
    const int32_t ke = string_close(i);
    if (ke < 0 || has_backslash(i + 1, ke)) return -1; // a key with escapes: the JavaScript walk decodes it
    const int id = key_id(in, i + 1, ke - i - 1);
    i = skip_ws(ke + 1);
    if (line[i] != ':') return -1;
    i = skip_ws(i + 1);
    if (id != F_OTHER) i = pick(i, id);
    else if (line[i] == '"') {
      const int32_t e = string_close(i);
      i = e < 0 ? -1 : e + 1;
    } else i = value_end(i);
    if (i < 0) return -1;
    i = skip_ws(i);
    if (line[i] == ',') {
      i = skip_ws(i + 1);
      continue;
    }
    return line[i] == '}' ? i + 1 : -1;
  }
}

/*
 * The line of `len` bytes (at most MAX_BYTES) is in `line`; the PADDING bytes after it are zeroed
 * here. 1 when it is a JSON object as JSON.parse decides, with from, to, esc and code_at filled; 0
 * when the JavaScript walk has to decide.
 */
__attribute__((export_name("scan")))
int32_t scan(int32_t len) {
  if (len < 0 || len > MAX_BYTES) return 0;
  for (int32_t k = 0; k < PADDING; k += 16) wasm_v128_store(line + len + k, wasm_i64x2_splat(0));
  for (int k = 0; k < FIELD_COUNT; k++) from[k] = ABSENT;
  code_at[0] = -1;
  int32_t i = skip_ws(0);
  if (line[i] != '{') return 0;
  const int32_t n = find_strings(len);
  if (n < 0) return 0;
  quote_at[n] = -1;
  quote_at[n + 1] = -1;
  qc = 0;
  i = members(i, IN_TOP);
  return i >= 0 && skip_ws(i) == len && qc == n ? 1 : 0;
}

/* ---- the header -------------------------------------------------------------------------------- */

/* Longest PARAM-VALUE and MSGID (k8s-values.ts MAX_SD_VALUE_BYTES, rfc5424.ts MAX_MSGID). */
#define MAX_SD_VALUE_BYTES 256
#define MAX_MSGID 32

static inline uint8_t *put(uint8_t *o, const uint8_t *from, int32_t n) {
  for (int32_t k = 0; k < n; k++) o[k] = from[k];
  return o + n;
}

static inline uint8_t *put_text(uint8_t *o, const char *text) {
  while (*text) *o++ = (uint8_t)*text++;
  return o;
}

/*
 * A PARAM-VALUE copied as it is, or NULL when one of its bytes needs a change or a decoding (an
 * escape, DEL or above, ']') or it is too long: the writer in JavaScript then writes the header.
 */
static uint8_t *put_value(uint8_t *o, int id) {
  const int32_t s = from[id], e = to[id];
  if (esc[id] || e - s > MAX_SD_VALUE_BYTES) return 0;
  for (int32_t k = s; k < e; k++) {
    const uint8_t c = line[k];
    if (c >= 0x7f || c == ']') return 0;
    o[k - s] = c;
  }
  return o + (e - s);
}

static inline int present(int id) { return from[id] >= 0 && to[id] > from[id]; }
static inline int two(int32_t at) { return (line[at] - '0') * 10 + line[at + 1] - '0'; }

/* `YYYY-MM-DDTHH:MM:SS[.frac]Z` in range, with the fraction cut to 6 digits; NULL for anything else. */
static uint8_t *put_utc_time(uint8_t *o, int id) {
  const int32_t s = from[id], e = to[id], n = e - s;
  if (esc[id] || n < 20 || line[s + 4] != '-' || line[s + 7] != '-' || line[s + 10] != 'T' || line[s + 13] != ':' || line[s + 16] != ':' ||
      line[e - 1] != 'Z')
    return 0;
  static const uint8_t digit_at[14] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
  for (int k = 0; k < 14; k++)
    if (!is_digit(line[s + digit_at[k]])) return 0;
  const int mo = two(s + 5), day = two(s + 8);
  if (mo < 1 || mo > 12 || day < 1 || day > 31 || two(s + 11) > 23 || two(s + 14) > 59 || two(s + 17) > 59) return 0;
  int32_t end = s + 19;
  if (n > 20) {
    if (line[end] != '.' || n == 21) return 0;
    for (int32_t k = end + 1; k < e - 1; k++)
      if (!is_digit(line[k])) return 0;
    end = e - 1 < end + 7 ? e - 1 : end + 7;
  }
  o = put(o, line + s, end - s);
  *o++ = 'Z';
  return o;
}

static const int SD_FIELDS[6] = {F_STAGE, F_VERB, F_USERNAME, F_RESOURCE, F_NAMESPACE, F_NAME};
static const char *const SD_NAMES[6] = {" stage=\"", " verb=\"", " user=\"", " resource=\"", " namespace=\"", " name=\""};

/*
 * The header of the event the last scan took, with its trailing space, into header_out: its length,
 * or 0 when the writer in JavaScript has to write it (a value to escape or decode, a time in another
 * form, no time, a code that is not a plain integer).
 */
__attribute__((export_name("writeHeader")))
int32_t write_header(void) {
  uint8_t *o = header_out;
  const uint8_t *p = parts;
  o = put(o, p, part_len[0]);
  p += part_len[0];
  // TIMESTAMP: the first of the event's times that is there; the JavaScript writer reads any other form.
  const int times[3] = {F_STAGE_TS, F_RECEIVED_TS, F_TS};
  int t = 0;
  while (t < 3 && !present(times[t])) t++;
  if (t == 3) return 0;
  o = put_utc_time(o, times[t]);
  if (!o) return 0;
  o = put(o, p, part_len[1]);
  p += part_len[1];
  // MSGID: the stage, its first 32 bytes, when they are printable ASCII.
  if (!present(F_STAGE)) *o++ = '-';
  else {
    if (esc[F_STAGE]) return 0;
    const int32_t s = from[F_STAGE], e = to[F_STAGE] < s + MAX_MSGID ? to[F_STAGE] : s + MAX_MSGID;
    for (int32_t k = s; k < e; k++) {
      if (line[k] < 33 || line[k] > 126) return 0;
      *o++ = line[k];
    }
  }
  o = put(o, p, part_len[2]);
  o = put_value(o, F_AUDIT_ID);
  if (!o) return 0;
  *o++ = '"';
  for (int k = 0; k < 6; k++) {
    if (!present(SD_FIELDS[k])) continue;
    o = put_text(o, SD_NAMES[k]);
    o = put_value(o, SD_FIELDS[k]);
    if (!o) return 0;
    *o++ = '"';
  }
  if (code_at[0] >= 0) {
    // A plain integer of at most 15 digits (JSON has no leading zeros) is written as it is; JavaScript writes any other number.
    const int32_t s = code_at[0], n = code_at[1] - s;
    if (n > 15) return 0;
    o = put_text(o, " code=\"");
    for (int32_t k = s; k < s + n; k++) {
      if (!is_digit(line[k])) return 0;
      *o++ = line[k];
    }
    *o++ = '"';
  }
  if (present(F_SOURCE_IP)) {
    o = put_text(o, " sourceIP=\"");
    o = put_value(o, F_SOURCE_IP);
    if (!o) return 0;
    *o++ = '"';
  }
  *o++ = ']';
  *o++ = ' ';
  return (int32_t)(o - header_out);
}
