import t from 'tap';
import { encodeFrame, parseFrame, parseResponse, RelpReader, writeSyslogFrame, type RelpFrame } from '../../src/sinks/relp-protocol.js';

const openRsp = '200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog';
const stream = Buffer.from(
  `1 rsp ${openRsp.length} ${openRsp}\n` +
    '2 rsp 6 200 OK\n' +
    '3 rsp 20 500 command disabled\n' +
    '4 rsp 0\n' +
    '0 serverclose 0\n',
);

t.test('frames split at every possible byte give the same frames as the whole stream', async (t) => {
  const whole: RelpFrame[] = [];
  new RelpReader().push(stream, (f) => whole.push(f));
  t.same(
    whole.map((f) => [f.txnr, f.command, f.data.toString()]),
    [
      [1, 'rsp', openRsp],
      [2, 'rsp', '200 OK'],
      [3, 'rsp', '500 command disabled'],
      [4, 'rsp', ''],
      [0, 'serverclose', ''],
    ],
  );
  for (let cut = 1; cut < stream.length; cut++) {
    const got: RelpFrame[] = [];
    const r = new RelpReader();
    r.push(stream.subarray(0, cut), (f) => got.push(f));
    r.push(stream.subarray(cut), (f) => got.push(f));
    if (JSON.stringify(got) !== JSON.stringify(whole)) t.fail(`split at ${cut} differs`);
  }
  const one: RelpFrame[] = [];
  const r = new RelpReader();
  for (const b of stream) r.push(Buffer.from([b]), (f) => one.push(f));
  t.same(one, whole, 'one byte at a time');
});

t.test('with onOk, plain 200 OK answers come as their TXNR alone, the rest as frames, however split', async (t) => {
  const seen = (r: RelpReader, pieces: Buffer[]) => {
    const out: string[] = [];
    for (const piece of pieces) r.push(piece, (f) => out.push(`${f.txnr} ${f.command} ${f.data.toString()}`), (txnr) => out.push(`${txnr} ok`));
    return out;
  };
  const whole = seen(new RelpReader(), [stream]);
  t.same(whole, [`1 rsp ${openRsp}`, '2 ok', '3 rsp 500 command disabled', '4 rsp ', '0 serverclose ']);
  for (let cut = 1; cut < stream.length; cut++) {
    if (JSON.stringify(seen(new RelpReader(), [stream.subarray(0, cut), stream.subarray(cut)])) !== JSON.stringify(whole)) t.fail(`split at ${cut} differs`);
  }
  t.same(seen(new RelpReader(), [...stream].map((b) => Buffer.from([b]))), whole, 'one byte at a time');
  t.same(seen(new RelpReader(), [Buffer.from('999999999 rsp 6 200 OK\n')]), ['999999999 ok'], 'nine digits');
  t.throws(() => seen(new RelpReader(), [Buffer.from('1234567890 rsp 6 200 OK\n')]), { name: 'RelpProtocolError' }, 'ten digits are still an error');
  t.throws(() => seen(new RelpReader(), [Buffer.from('7 rsp 6 200 OKX')]), { name: 'RelpProtocolError' }, 'an OK frame without its LF is malformed');
});

t.test('malformed frames are protocol errors', async (t) => {
  for (const bad of ['x rsp 0\n', '1 rsp 3 abcX', '1234567890 rsp 0\n', '1 r3p 0\n', '1 rsp 0X', '1 rsp 99999999 x']) {
    t.throws(() => parseFrame(Buffer.from(bad), 0), { name: 'RelpProtocolError' }, JSON.stringify(bad));
  }
  t.equal(parseFrame(Buffer.from('12 rsp 6 200 O'), 0), undefined, 'incomplete is not an error');
  t.equal(parseFrame(Buffer.from('12 rsp 1'), 0), undefined, 'a DATALEN that may go on is incomplete');
  t.same(parseFrame(Buffer.from('5 rsp 0 \n'), 0)?.next, 9, 'SP without data tolerated');
});

t.test('responses: code, text, offers', async (t) => {
  const open = parseResponse(Buffer.from('200 OK\nrelp_version=0\ncommands=syslog'));
  t.equal(open.code, 200);
  t.equal(open.text, 'OK');
  t.equal(open.offers.get('commands'), 'syslog');
  t.same(parseResponse(Buffer.from('500 command disabled')), { code: 500, text: 'command disabled', offers: new Map() });
  t.equal(parseResponse(Buffer.from('')).code, 0, 'no code is not a 200');
  t.equal(parseResponse(Buffer.from('2000 OK')).code, 0);
});

t.test('encoding', async (t) => {
  t.equal(encodeFrame(7, 'close').toString(), '7 close 0\n');
  t.equal(encodeFrame(1, 'open', 'relp_version=0').toString(), '1 open 14 relp_version=0\n');
  const src = Buffer.from('xx<14>1 - h a - - - {"k":"ü"}yy');
  const out = Buffer.alloc(100);
  const end = writeSyslogFrame(out, 0, 42, src, 2, src.length - 2);
  t.equal(out.subarray(0, end).toString(), `42 syslog ${src.length - 4} <14>1 - h a - - - {"k":"ü"}\n`, 'DATALEN counts bytes, not characters');
});
