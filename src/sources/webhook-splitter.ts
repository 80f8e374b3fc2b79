/** A request the splitter refuses: the HTTP status and the reason (never the body's bytes). */
export class SplitError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const ITEMS = Buffer.from('items');

/** A growable byte store: events are appended compacted, end to end, and sliced out at the end. */
class Bytes {
  buf = Buffer.allocUnsafe(0);
  len = 0;
  push(b: number): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[this.len++] = b;
  }
  pushAll(src: Buffer): void {
    while (this.len + src.length > this.buf.length) this.grow();
    src.copy(this.buf, this.len);
    this.len += src.length;
  }
  private grow(): void {
    const next = Buffer.allocUnsafe(Math.max(4096, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

export interface SplitEvents {
  count: number;
  /** Event `i`'s compact JSON: a view into the store, valid while it is held. */
  line(i: number): Buffer;
  parsed: object[] | undefined;
}

export interface SplitterLimits {
  maxDepth: number;
  maxEventBytes: number;
  /** Called with the running count at each event; throws to stop the request (429, 413). */
  onEvent?: (count: number) => void;
  /** Parsed events are kept (and handed to encodeParsed) while the request is this small. */
  keepParsedBelowBytes?: number;
}

/**
 * Splits a webhook body, chunk by chunk as it arrives, into its audit events: an EventList, an
 * Event, or an array of either, without building the whole document. Each event is kept as compact
 * JSON (whitespace outside strings dropped), end to end in one store, and checked with JSON.parse on
 * its own; nesting deeper than maxDepth is refused before any parser recurses into it. What is held
 * is about the body's size, not the several times more a parsed document tree takes.
 *
 * Everything but the events (an EventList's kind, apiVersion, metadata; a lone Event) is gathered
 * as a small "skeleton" per list-level object and parsed when that object closes.
 */
export class EventSplitter {
  private readonly store = new Bytes();
  private readonly ends: number[] = [];
  private parsed: object[] | undefined = [];
  private readonly stack: Uint8Array;
  private depth = 0;
  private inString = false;
  private escape = false;
  private topDone = false;
  private topScalar = false;
  /** Depth of the object being read as an Event or an EventList (-1: none). */
  private listDepth = -1;
  private listIndex = -1;
  private skeleton = new Bytes();
  private expectKey = false;
  private key: number[] | undefined;
  private itemsNext = false;
  private sawItemsArray = false;
  /** Depth of the items array inside the list-level object (-1: not inside it). */
  private itemsDepth = -1;
  private itemIndex = 0;
  private eventStart = -1;
  /** Between elements of an array we do not copy (the top array, an items array): a value or a comma is next. */
  private wantValue = true;
  private afterComma = false;

  constructor(private readonly limits: SplitterLimits) {
    this.stack = new Uint8Array(limits.maxDepth + 1);
  }

  get count(): number {
    return this.ends.length;
  }

  /** Feeds the next bytes of the body. */
  write(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) this.byte(chunk[i]);
  }

  /** The body is complete: its events' compact JSON, and their parsed values when kept. */
  end(): SplitEvents {
    if (this.topScalar) {
      let ok = true;
      try {
        JSON.parse(this.skeleton.buf.toString('utf8', 0, this.skeleton.len));
      } catch {
        ok = false;
      }
      throw new SplitError(400, ok ? 'the body is not an Event or an EventList' : 'malformed JSON');
    }
    if (!this.topDone || this.inString) throw new SplitError(400, 'malformed JSON: the body ends inside a value');
    const { buf } = this.store;
    const ends = this.ends;
    // Views made one at a time as the encoder takes them: 100,000 Buffer objects at once weigh ~10 MB.
    return { count: ends.length, line: (i) => buf.subarray(i === 0 ? 0 : ends[i - 1], ends[i]), parsed: this.parsed };
  }

  private where(): string {
    return this.stack[0] === OPEN_ARR ? `item ${this.listIndex}` : 'the body';
  }

  private malformed(what: string): never {
    throw new SplitError(400, `malformed JSON: ${what}`);
  }

  private byte(b: number): void {
    if (this.inString) {
      this.emit(b);
      if (this.escape) this.escape = false;
      else if (b === BACKSLASH) this.escape = true;
      else if (b === QUOTE) return this.endString();
      if (this.key && this.key.length <= ITEMS.length) this.key.push(b);
      return;
    }
    if (isSpace(b)) return;
    if (this.topDone) this.malformed('more after the end of the body');
    if (this.topScalar) {
      if (this.skeleton.len >= this.limits.maxEventBytes) throw new SplitError(400, 'the body is not an Event or an EventList');
      return this.skeleton.push(b);
    }
    if (this.depth === 0) return this.startTop(b);
    const d = this.depth;
    // Between the elements of an array whose elements are not copied as they are.
    if ((d === 1 && this.stack[0] === OPEN_ARR) || d === this.itemsDepth) {
      if (b === COMMA) {
        if (this.wantValue) this.malformed('unexpected ","');
        this.wantValue = this.afterComma = true;
        return;
      }
      if (b === CLOSE_ARR) {
        if (this.afterComma) this.malformed('"," before "]"');
        return this.close(b);
      }
      if (!this.wantValue) this.malformed('missing ","');
      this.wantValue = this.afterComma = false;
      if (d === this.itemsDepth) {
        if (b !== OPEN_OBJ) throw new SplitError(400, `${this.where()}: items[${this.itemIndex}] is not an object`);
        this.eventStart = this.store.len;
        this.store.push(b);
      } else {
        this.listIndex++;
        if (b !== OPEN_OBJ) throw new SplitError(400, `${this.where()} is not an Event or an EventList`);
      }
      return this.open(b);
    }
    this.emit(b);
    if (b === QUOTE) {
      this.inString = true;
      this.key = d === this.listDepth && this.expectKey ? [] : undefined;
      return;
    }
    if (b === OPEN_OBJ || b === OPEN_ARR) {
      if (this.itemsNext && b === OPEN_ARR) {
        this.itemsNext = false;
        this.sawItemsArray = true;
        this.open(b);
        this.itemsDepth = this.depth;
        this.itemIndex = 0;
        this.wantValue = true;
        this.afterComma = false;
        return;
      }
      this.itemsNext = false;
      return this.open(b);
    }
    if (b === CLOSE_OBJ || b === CLOSE_ARR) return this.close(b);
    if (d === this.listDepth) {
      if (b === COMMA) this.expectKey = true;
      else if (b !== COLON) this.itemsNext = false;
    }
  }

  private startTop(b: number): void {
    if (b === OPEN_ARR) {
      this.wantValue = true;
      return this.open(b);
    }
    if (b === OPEN_OBJ) return this.open(b);
    this.topScalar = true;
    this.skeleton.push(b);
  }

  private open(b: number): void {
    if (this.depth >= this.limits.maxDepth) throw new SplitError(400, `nested deeper than ${this.limits.maxDepth} levels`);
    this.stack[this.depth++] = b;
    if (b === OPEN_OBJ && this.listDepth === -1) {
      // An object at the top, or an element of the top array: an Event or an EventList.
      this.listDepth = this.depth;
      this.skeleton = new Bytes();
      this.skeleton.push(b);
      this.expectKey = true;
      this.sawItemsArray = false;
    }
  }

  private close(b: number): void {
    const want = b === CLOSE_OBJ ? OPEN_OBJ : OPEN_ARR;
    if (this.depth === 0 || this.stack[this.depth - 1] !== want) this.malformed(`unexpected "${String.fromCharCode(b)}"`);
    const closing = this.depth--;
    if (closing === this.itemsDepth) {
      this.itemsDepth = -1;
      this.skeleton.push(CLOSE_ARR);
    } else if (closing === this.itemsDepth + 1 && this.eventStart !== -1) {
      this.endEvent();
    } else if (closing === this.listDepth) {
      this.endListObject();
    }
    if (this.depth === 0) this.topDone = true;
    else if ((this.depth === 1 && this.stack[0] === OPEN_ARR) || this.depth === this.itemsDepth) this.wantValue = false;
  }

  private endString(): void {
    this.inString = false;
    if (!this.key) return;
    const isItems = this.key.length === ITEMS.length && ITEMS.equals(Buffer.from(this.key));
    this.key = undefined;
    this.expectKey = false;
    this.itemsNext = isItems;
  }

  /** The byte belongs to what is being kept: the event being read, or the list-level skeleton. */
  private emit(b: number): void {
    if (this.eventStart !== -1) {
      this.store.push(b);
      if (this.store.len - this.eventStart > this.limits.maxEventBytes) throw new SplitError(413, `event ${this.count} is larger than ${this.limits.maxEventBytes} bytes`);
    } else if (this.listDepth !== -1) {
      this.skeleton.push(b);
      if (this.skeleton.len > this.limits.maxEventBytes) throw new SplitError(413, `event ${this.count} is larger than ${this.limits.maxEventBytes} bytes`);
    }
  }

  private endEvent(): void {
    const start = this.eventStart;
    this.eventStart = -1;
    if (this.store.len - start > this.limits.maxEventBytes) throw new SplitError(413, `event ${this.count} is larger than ${this.limits.maxEventBytes} bytes`);
    this.itemIndex++;
    this.addEvent(start);
  }

  private addEvent(start: number, known?: object): void {
    let value = known;
    try {
      value ??= JSON.parse(this.store.buf.toString('utf8', start, this.store.len)) as object;
    } catch {
      // The parser's message quotes the text: the body stays out of answers and logs.
      this.malformed(`event ${this.count} is not valid JSON`);
    }
    this.ends.push(this.store.len);
    if (this.parsed) {
      if (this.store.len > (this.limits.keepParsedBelowBytes ?? 0)) this.parsed = undefined;
      else this.parsed.push(value);
    }
    this.limits.onEvent?.(this.ends.length);
  }

  private endListObject(): void {
    this.listDepth = -1;
    let doc: { kind?: unknown; items?: unknown };
    try {
      doc = JSON.parse(this.skeleton.buf.toString('utf8', 0, this.skeleton.len)) as typeof doc;
    } catch {
      this.malformed(`${this.where()} is not valid JSON`);
    }
    if (doc.kind === 'EventList') {
      if (!this.sawItemsArray && doc.items !== null && doc.items !== undefined) throw new SplitError(400, `${this.where()}: EventList items is not an array`);
      return;
    }
    if (doc.kind !== 'Event' || this.sawItemsArray) throw new SplitError(400, `${this.where()} is not an Event or an EventList`);
    const start = this.store.len;
    this.store.pushAll(this.skeleton.buf.subarray(0, this.skeleton.len));
    this.addEvent(start, doc);
  }
}
