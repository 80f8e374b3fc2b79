import t from 'tap';
import { runAuditfwd, usageError } from '../helpers/proc.js';

t.test('bad RELP settings exit 2 with one line naming the flag', async (t) => {
  const relp = ['--to', 'relp://127.0.0.1:2514'];
  await usageError(t, ['--to', 'relp+tls://127.0.0.1:2514', '--cert', 'c.pem'], /--cert: needs --key/);
  await usageError(t, [...relp, '--ca', 'ca.pem'], /--ca: only for a TLS drain/);
  await usageError(t, [...relp, '--relp-window', '0'], /--relp-window: 0 is out of range \(1-65536\)/);
  await usageError(t, [...relp, '--relp-window', 'many'], /--relp-window: "many" is not a whole number/);
  await usageError(t, [...relp, '--relp-max-refusals', '0'], /--relp-max-refusals: 0 is out of range/);
  await usageError(t, [...relp, '--relp-ack-timeout', '5ms'], /--relp-ack-timeout/);
});
