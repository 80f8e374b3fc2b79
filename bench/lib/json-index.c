/*
 * An experiment of issue 15, kept for bench/k8s-scan-floor.mjs (measured and not taken: see
 * bench/README.md, "k8s-audit, fourth pass"). A first pass for the audit event scanner
 * (src/transforms/k8s-scan.ts), in WebAssembly: checks that a line is JSON as JSON.parse decides,
 * and lists the top-level members of its object, so that a scanner would read only the members it
 * wants and skip the others without touching them.
 *
 * Two steps, as simdjson's:
 * 1. Where every string starts and ends, 64 bytes at a time with SIMD and no branch per string. In
 *    JavaScript, finding a string's end costs a mispredicted branch per string, and an event has
 *    about 80 strings. The escape logic is simdjson's (json_escape_scanner.h): a backslash escapes
 *    the byte after it unless it is itself escaped, decided for a whole block by one subtraction.
 * 2. The grammar, byte by byte outside strings, jumping over each string to its closing quote.
 *
 * Built by bench/lib/build-json-index.mjs into json-index-wasm.mjs (needs Debian's clang-14 and lld-14).
 */
#include <stdint.h>
#include <wasm_simd128.h>

/* The longest line indexed; the scanner walks a longer one itself. */
#define MAX_BYTES 65536
/* Zero bytes after the line: the last block's read, a \u's four digits, the scanner's word reads. */
#define PADDING 80
#define ODD_BITS 0xAAAAAAAAAAAAAAAAULL

static uint8_t line[MAX_BYTES + PADDING] __attribute__((aligned(16)));
/* The positions of the line's unescaped quotes in order, then two entries of -1. */
static int32_t quote_at[MAX_BYTES + 2];
/* One bit per byte, set for each backslash inside a string. */
static uint64_t backslash_bits[(MAX_BYTES + PADDING + 63) / 64];
/* Per top-level member: the index in quote_at of its key's opening quote, where its value starts and ends. */
static int32_t member_key[MAX_BYTES / 4 + 1];
static int32_t member_value[MAX_BYTES / 4 + 1];
static int32_t member_end[MAX_BYTES / 4 + 1];
/* The open containers above the current one, '{' or '['. */
static uint8_t stack[MAX_BYTES];

__attribute__((export_name("line"))) uint8_t *line_at(void) { return line; }
__attribute__((export_name("quotes"))) int32_t *quotes_at(void) { return quote_at; }
__attribute__((export_name("backslashes"))) uint64_t *backslashes_at(void) { return backslash_bits; }
__attribute__((export_name("memberKey"))) int32_t *member_key_at(void) { return member_key; }
__attribute__((export_name("memberValue"))) int32_t *member_value_at(void) { return member_value; }
__attribute__((export_name("memberEnd"))) int32_t *member_end_at(void) { return member_end; }

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
 * a control character or an escape JSON does not allow, or does not end. `*any` is set when some
 * string holds a backslash. For a line whose backslashes are all inside strings (every valid JSON
 * text) the quotes pair up as its strings do; any other line fails step 2.
 */
static int32_t find_strings(int32_t len, int *any) {
  const v128_t vq = wasm_i8x16_splat('"'), vb = wasm_i8x16_splat('\\'), vc = wasm_i8x16_splat(0x20);
  uint64_t next_is_escaped = 0, prev_in_string = 0, err = 0, any_backslash = 0;
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
    any_backslash |= in_string_backslashes;
    for (; quote != 0; quote &= quote - 1) quote_at[n++] = base + __builtin_ctzll(quote);
  }
  *any = any_backslash != 0;
  return err != 0 || prev_in_string != 0 ? -1 : n;
}

static inline int32_t skip_ws(int32_t i) {
  for (;;) {
    const uint8_t c = line[i];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return i;
    i++;
  }
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

/*
 * The line of `len` bytes (at most MAX_BYTES) is in `line`; the PADDING bytes after it are zeroed
 * here. When it is a JSON object, as JSON.parse decides: its members' number times two, plus one
 * when a string holds a backslash, with quote_at, backslash_bits and the member arrays filled. -1
 * for anything else (not JSON, or JSON that is not an object).
 */
__attribute__((export_name("index")))
int32_t index_line(int32_t len) {
  for (int32_t k = 0; k < PADDING; k += 16) wasm_v128_store(line + len + k, wasm_i64x2_splat(0));
  const uint8_t *b = line;
  int32_t i = skip_ws(0);
  if (b[i] != '{') return -1;
  int any;
  const int32_t n = find_strings(len, &any);
  if (n < 0) return -1;
  quote_at[n] = -1;
  quote_at[n + 1] = -1;
  int32_t qc = 0, depth = 0, members = 0;
  uint8_t open = 0;
  int key = 0;
  for (;;) {
    uint8_t c = b[i];
    if (key) {
      // A member's key, then its colon.
      if (c != '"' || quote_at[qc] != i || quote_at[qc + 1] < 0) return -1;
      if (depth == 1) member_key[members] = qc;
      i = skip_ws(quote_at[qc + 1] + 1);
      qc += 2;
      if (b[i] != ':') return -1;
      i = skip_ws(i + 1);
      if (depth == 1) member_value[members] = i;
      key = 0;
      c = b[i];
    }
    if (c == '"') {
      if (quote_at[qc] != i || quote_at[qc + 1] < 0) return -1;
      i = quote_at[qc + 1] + 1;
      qc += 2;
    } else if (c == '{' || c == '[') {
      i = skip_ws(i + 1);
      if (b[i] == c + 2) i++;
      else {
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
      if (depth == 0) {
        // The top-level object is complete: nothing but whitespace may follow, and every quote was a string's.
        return skip_ws(i) == len && qc == n ? 2 * members + any : -1;
      }
      if (depth == 1) member_end[members++] = i;
      i = skip_ws(i);
      const uint8_t d = b[i];
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
