import { Rsyslog } from './rsyslog.js';
import { readJsonLines, type ReceivedFields } from './interop.js';

interface TestLike {
  teardown(fn: () => unknown): void;
}

/**
 * Every field rsyslog parsed, one JSON object per message (`json` escapes for a JSON string value).
 * The timestamp is rsyslog's rendering of TIMESTAMP as received (date-rfc3339 keeps its precision).
 * Written inside the double-quoted string="…" of the config, hence the escaped quotes.
 */
export const RSYSLOG_FIELDS_TEMPLATE =
  '{\\"pri\\":\\"%pri%\\",\\"ts\\":\\"%timereported:::date-rfc3339,json%\\",\\"host\\":\\"%hostname:::json%\\",' +
  '\\"app\\":\\"%app-name:::json%\\",\\"procid\\":\\"%procid:::json%\\",\\"msgid\\":\\"%msgid:::json%\\",' +
  '\\"sd\\":\\"%structured-data:::json%\\",\\"sdp\\":\\"%$!rfc5424-sd:::json%\\",\\"msg\\":\\"%msg:::json%\\"}\\n';

/**
 * Inputs whose messages first go through mmpstrucdata, rsyslog's own STRUCTURED-DATA parser (names
 * kept as sent), which fills $!rfc5424-sd (written as "sdp").
 */
export function withSdParser(inputs: (port: number) => string): (port: number) => string {
  return (port) =>
    [
      'module(load="mmpstrucdata")',
      'ruleset(name="parse-sd") {',
      '  action(type="mmpstrucdata" sd_name.lowercase="off")',
      '  call out',
      '}',
      inputs(port).replace('ruleset="out"', 'ruleset="parse-sd"'),
    ].join('\n');
}

/**
 * rsyslog writing every message's parsed fields as JSON lines. Control characters are kept as they
 * are (rsyslog turns them into #ooo by default), so the MSG comparison is on the exact bytes.
 */
export async function startRsyslogFields(t: TestLike, inputs: (port: number) => string, modules: string[], global = ''): Promise<{ rs: Rsyslog; read: () => ReceivedFields[] }> {
  const rs = await Rsyslog.start(t, {
    inputs,
    modules,
    template: RSYSLOG_FIELDS_TEMPLATE,
    global: `parser.escapeControlCharactersOnReceive="off" ${global}`,
  });
  return { rs, read: () => readJsonLines(rs.outFile) };
}
