import t from 'tap';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { hasOpenssl, TestPki } from '../helpers/certs.js';
import { runAuditfwd, type Run } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { TlsTestDrain } from '../helpers/tls-drain.js';

type Test = Parameters<Parameters<typeof t.test>[1]>[0];

// Retries come every 100-300 ms, so a test sees several attempts within a second.
const FAST = ['--reconnect-max-delay', '300ms', '--log-level', 'info'];

async function drain(t: Test, opts: Parameters<typeof TlsTestDrain.start>[0]): Promise<TlsTestDrain> {
  const d = await TlsTestDrain.start(opts);
  t.teardown(() => d.close());
  return d;
}

const count = (text: string, needle: string) => text.split(needle).length - 1;
const msgs = (d: TlsTestDrain) => d.messages.map((m) => parseRfc5424(m).msg.toString());

/**
 * The client keeps failing: at least `attempts` TCP connections reach the drain (retried, not given up),
 * no message is delivered, the cause is logged exactly once, and auditfwd is still running.
 */
async function refusedRepeatedly(t: Test, d: TlsTestDrain, run: Run, reason: string, attempts = 4): Promise<void> {
  await run.waitForLog(new RegExp(`"reason":"${reason}"`));
  // Each failure is logged before its backoff delay, so once attempt N connects, N-1 failures are logged.
  await d.until(() => d.tcpConnections >= attempts);
  t.equal(d.messages.length, 0, 'nothing delivered');
  t.equal(d.handshakes.length, 0, 'no handshake completed');
  t.equal(count(run.stderr(), `"reason":"${reason}"`), 1, `${reason} logged once over ${attempts - 1} failed attempts`);
  t.equal(run.child.exitCode, null, 'still running and retrying');
}

if (!hasOpenssl()) {
  t.plan(0, 'openssl is missing (Debian package openssl): the TLS tests make their certificates with it');
} else {
  const pki = new TestPki(t.testdir({}));
  const ca = pki.ca('ca');
  const otherCa = pki.ca('other-ca');
  const clientCa = pki.ca('client-ca');
  const server = pki.issue(ca, 'server'); // SAN DNS:localhost, IP:127.0.0.1
  const elsewhere = pki.issue(ca, 'elsewhere', { san: ['DNS:drain.example.org'] });
  const expired = pki.issue(ca, 'expired', { expired: true });
  const selfSigned = pki.selfSigned('self-signed');
  const passphrase = 'correct horse battery staple';
  const client = pki.issue(clientCa, 'client', { usage: 'client', passphrase });
  const strangerClient = pki.issue(otherCa, 'stranger-client', { usage: 'client', passphrase });
  const passFile = join(pki.dir, 'passphrase');
  writeFileSync(passFile, passphrase + '\n', { mode: 0o600 });
  // A bundle of several CAs; the one that signed the drain is not the first.
  const bundle = join(pki.dir, 'bundle.pem');
  writeFileSync(bundle, Buffer.concat([otherCa.certPem, ca.certPem]));
  const serverOpts = { cert: server.certPem, key: server.keyPem };

  t.test('verified server: CA bundle, SAN host name, SNI, TLS 1.2+', async (t) => {
    for (const [label, args, sni] of [
      ['tls://localhost', (p: number) => ['--to', `tls://localhost:${p}`], 'localhost'],
      ['--tls with an IP (IP SAN, no SNI)', (p: number) => ['--tls', '--to', `127.0.0.1:${p}`], false],
      ['tcp+tls://', (p: number) => ['--to', `tcp+tls://127.0.0.1:${p}`], false],
    ] as const) {
      const d = await drain(t, serverOpts);
      const run = runAuditfwd(t, [...args(d.port), '--ca', bundle, ...FAST], { stdin: 'one\ntwo\n' });
      t.equal(await run.exited, 0, `${label}: exits 0`, { stderr: run.stderr() });
      await d.waitFor(2);
      t.same(msgs(d), ['one', 'two'], `${label}: every message, in order`);
      t.match(d.handshakes[0].protocol, /^TLSv1\.[23]$/, `${label}: TLS 1.2 or newer`);
      t.equal(d.handshakes[0].servername, sni, `${label}: SNI`);
    }
  });

  t.test('TLS 1.2 only server works too (min version is 1.2)', async (t) => {
    const d = await drain(t, { ...serverOpts, maxVersion: 'TLSv1.2' });
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, ...FAST], { stdin: 'one\n' });
    t.equal(await run.exited, 0, 'exits 0', { stderr: run.stderr() });
    t.same(msgs(d), ['one']);
    t.equal(d.handshakes[0].protocol, 'TLSv1.2');
  });

  t.test('TLS 1.1 server is refused', async (t) => {
    const d = await drain(t, { ...serverOpts, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, ...FAST], { stdin: 'secret\n' });
    await run.waitForLog(/no common TLS version/);
    await d.until(() => d.tcpConnections >= 2);
    t.equal(d.messages.length, 0);
    t.equal(run.child.exitCode, null, 'still retrying');
  });

  t.test('wrong CA: nothing sent, keeps retrying, the reason logged once', async (t) => {
    const d = await drain(t, serverOpts);
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', otherCa.cert, ...FAST], { stdin: 'secret\n' });
    await refusedRepeatedly(t, d, run, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    t.match(run.stderr(), /not signed by a trusted CA/);
  });

  t.test('system trust store is the default: a private CA is not in it', async (t) => {
    const d = await drain(t, serverOpts);
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, ...FAST], { stdin: 'secret\n' });
    await refusedRepeatedly(t, d, run, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 2);
    t.match(run.stderr(), /"trust":"[^"]*(ca-certificates|bundle|cert\.pem|Mozilla)/);
  });

  t.test("SSL_CERT_FILE names the system store: the drain is trusted through it; Node's own default store is left empty", async (t) => {
    const d = await drain(t, serverOpts);
    // Loaded into node before the program: at exit, says where OpenSSL's default paths point. Node
    // builds its default store from them (bin/auditfwd runs node with --use-openssl-ca) the first
    // time a TLS context is made; auditfwd never trusts that store, and it cost 1 MB parsed.
    const probe = join(pki.dir, 'default-paths.cjs');
    writeFileSync(probe, "process.on('exit', () => process.stderr.write(`default paths: ${process.env.SSL_CERT_FILE} ${process.env.SSL_CERT_DIR}\\n`));\n");
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, ...FAST], { stdin: 'one\n', env: { SSL_CERT_FILE: ca.cert }, nodeOptions: `--require ${probe}` });
    t.equal(await run.exited, 0, 'exits 0: verified against the CA that SSL_CERT_FILE names', { stderr: run.stderr() });
    t.same(msgs(d), ['one']);
    t.ok(run.stderr().includes(`"trust":"${ca.cert}"`), 'the log names SSL_CERT_FILE as what is trusted');
    t.match(run.stderr(), /default paths: \/dev\/null \/dev\/null/, "OpenSSL's default paths point at nothing");
  });

  t.test('name mismatch: refused; --servername names what to check and send as SNI', async (t) => {
    const d = await drain(t, { cert: elsewhere.certPem, key: elsewhere.keyPem });
    const bad = runAuditfwd(t, ['--to', `tls://127.0.0.1:${d.port}`, '--ca', ca.cert, ...FAST], { stdin: 'secret\n' });
    await refusedRepeatedly(t, d, bad, 'ERR_TLS_CERT_ALTNAME_INVALID');
    t.match(bad.stderr(), /does not name the drain host/);
    bad.child.kill('SIGKILL');
    await bad.exited;

    const good = runAuditfwd(t, ['--to', `tls://127.0.0.1:${d.port}`, '--ca', ca.cert, '--servername', 'drain.example.org', ...FAST], { stdin: 'one\n' });
    t.equal(await good.exited, 0, 'exits 0', { stderr: good.stderr() });
    t.same(msgs(d), ['one']);
    t.equal(d.handshakes[0].servername, 'drain.example.org');
  });

  t.test('expired server certificate: refused, reason logged once', async (t) => {
    const d = await drain(t, { cert: expired.certPem, key: expired.keyPem });
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, ...FAST], { stdin: 'secret\n' });
    await refusedRepeatedly(t, d, run, 'CERT_HAS_EXPIRED');
  });

  t.test('mutual TLS required by the server', async (t) => {
    const mtls = { ...serverOpts, ca: clientCa.certPem, requestCert: true, rejectUnauthorized: true };

    t.test('without a client certificate: refused, nothing sent', async (t) => {
      const d = await drain(t, mtls);
      const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, ...FAST], { stdin: 'secret\n' });
      await run.waitForLog(/requires a client certificate/);
      await d.until(() => d.tcpConnections >= 4);
      t.equal(d.messages.length, 0, 'nothing delivered (TLS 1.3: no data before the server accepted us)');
      t.equal(count(run.stderr(), 'requires a client certificate'), 1, 'logged once');
      t.equal(run.child.exitCode, null, 'still retrying');
    });

    t.test('with --cert/--key, passphrase from a file', async (t) => {
      const d = await drain(t, mtls);
      const run = runAuditfwd(
        t,
        ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, '--cert', client.cert, '--key', client.key, '--key-passphrase-file', passFile, ...FAST],
        { stdin: 'one\ntwo\n' },
      );
      t.equal(await run.exited, 0, 'exits 0', { stderr: run.stderr() });
      t.same(msgs(d), ['one', 'two']);
      t.equal(d.handshakes[0].clientCn, 'client');
      t.notMatch(run.stderr(), passphrase, 'passphrase never logged');
      t.notMatch(run.stderr(), 'PRIVATE KEY', 'key never logged');
    });

    t.test('passphrase from AUDITFWD_KEY_PASSPHRASE', async (t) => {
      const d = await drain(t, mtls);
      const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, '--cert', client.cert, '--key', client.key, ...FAST], {
        stdin: 'one\n',
        env: { AUDITFWD_KEY_PASSPHRASE: passphrase },
      });
      t.equal(await run.exited, 0, 'exits 0', { stderr: run.stderr() });
      t.same(msgs(d), ['one']);
      t.notMatch(run.stderr(), passphrase);
    });
  });

  t.test('fingerprint pinning of a self-signed drain', async (t) => {
    const d = await drain(t, { cert: selfSigned.certPem, key: selfSigned.keyPem });
    const wrong = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--fingerprint', `sha256:${server.fingerprint256}`, ...FAST], { stdin: 'secret\n' });
    await d.until(() => d.tcpConnections >= 4);
    t.equal(d.messages.length, 0, 'wrong pin: nothing delivered');
    t.equal(count(wrong.stderr(), '"reason":"FINGERPRINT_MISMATCH"'), 1, 'wrong pin: logged once');
    t.match(wrong.stderr(), selfSigned.fingerprint256, 'the log shows the fingerprint seen, to compare');
    wrong.child.kill('SIGKILL');
    await wrong.exited;

    const right = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--fingerprint', `sha256:${selfSigned.fingerprint256}`, ...FAST], { stdin: 'one\n' });
    t.equal(await right.exited, 0, 'exits 0', { stderr: right.stderr() });
    t.same(msgs(d), ['one'], 'right pin: delivered');
  });

  t.test('--tls-insecure-skip-verify warns at every connect', async (t) => {
    const d = await drain(t, { cert: selfSigned.certPem, key: selfSigned.keyPem });
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--tls-insecure-skip-verify', ...FAST], { stdin: 'pipe' });
    const warning = /NOT verified/g;
    run.child.stdin!.write('one\n');
    await d.waitFor(1);
    await run.waitForLog(warning);
    d.dropConnections();
    await d.until(() => d.handshakes.length >= 2);
    run.child.stdin!.write('two\n');
    await d.waitFor(3);
    t.equal(run.stderr().match(warning)?.length, 2, 'one warning per connection');
    t.same(msgs(d), ['one', 'one', 'two'], 'the dropped connection is followed by its --tcp-resend-window');
    run.child.stdin!.end();
    t.equal(await run.exited, 0);
  });

  t.test('never plaintext: a drain that does not speak TLS sees only a ClientHello', async (t) => {
    const received: Buffer[] = [];
    let connections = 0;
    const plain = createServer((sock: Socket) => {
      connections++;
      sock.on('data', (b) => {
        received.push(b);
        sock.end('this is not TLS\n');
      });
      sock.on('error', () => {});
    });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    t.teardown(() => plain.close());
    const port = (plain.address() as { port: number }).port;
    const run = runAuditfwd(t, ['--to', `tls://localhost:${port}`, '--ca', ca.cert, ...FAST], { stdin: 'secret-line\n' });
    await run.waitForLog(/does not speak TLS/);
    await new Promise<void>((resolve) => {
      const check = () => (connections >= 3 ? resolve() : plain.once('connection', () => setImmediate(check)));
      check();
    });
    const all = Buffer.concat(received);
    t.equal(all.includes('secret-line'), false, 'the message never went out in plaintext');
    t.ok(received.every((b) => b[0] === 0x16), 'every first byte is a TLS handshake record');
    t.equal(run.child.exitCode, null, 'still retrying');
  });

  t.test('SIGHUP re-reads the CA: the next connection succeeds, buffered data delivered', async (t) => {
    const dir = t.testdir({});
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, otherCa.certPem);
    const d = await drain(t, serverOpts);
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', caFile, ...FAST], { stdin: 'pipe' });
    run.child.stdin!.write('waited\n');
    await run.waitForLog(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    t.equal(d.messages.length, 0, 'nothing before the reload');
    writeFileSync(caFile, readFileSync(ca.cert));
    run.child.kill('SIGHUP');
    await run.waitForLog(/TLS material reloaded/);
    await d.waitFor(1);
    t.same(msgs(d), ['waited'], 'the data that waited in the buffer is delivered');
    run.child.stdin!.end();
    t.equal(await run.exited, 0, 'SIGHUP did not stop it');
  });

  t.test('SIGHUP re-reads the client certificate and key', async (t) => {
    const dir = t.testdir({});
    const certFile = join(dir, 'client.pem');
    const keyFile = join(dir, 'client.key');
    writeFileSync(certFile, strangerClient.certPem);
    writeFileSync(keyFile, strangerClient.keyPem, { mode: 0o600 });
    const d = await drain(t, { ...serverOpts, ca: clientCa.certPem, requestCert: true, rejectUnauthorized: true });
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', ca.cert, '--cert', certFile, '--key', keyFile, '--key-passphrase-file', passFile, ...FAST], {
      stdin: 'pipe',
    });
    run.child.stdin!.write('waited\n');
    await d.until(() => d.handshakeErrors.length >= 2);
    t.equal(d.messages.length, 0, 'a client certificate from another CA is refused');
    writeFileSync(certFile, client.certPem);
    writeFileSync(keyFile, client.keyPem);
    run.child.kill('SIGHUP');
    await d.waitFor(1);
    t.same(msgs(d), ['waited']);
    t.equal(d.handshakes.at(-1)!.clientCn, 'client', 'the rotated certificate is the one presented');
    run.child.stdin!.end();
    t.equal(await run.exited, 0);
  });

  t.test('SIGHUP with a broken file keeps the material that works', async (t) => {
    const dir = t.testdir({});
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    const d = await drain(t, serverOpts);
    const run = runAuditfwd(t, ['--to', `tls://localhost:${d.port}`, '--ca', caFile, ...FAST], { stdin: 'pipe' });
    run.child.stdin!.write('one\n');
    await d.waitFor(1);
    writeFileSync(caFile, 'garbage\n');
    run.child.kill('SIGHUP');
    await run.waitForLog(/reload failed; the previous certificates stay in use/);
    d.dropConnections();
    run.child.stdin!.write('two\n');
    await d.waitFor(3);
    t.same(msgs(d), ['one', 'one', 'two'], 'the dropped connection is followed by its --tcp-resend-window');
    run.child.stdin!.end();
    t.equal(await run.exited, 0);
  });

  t.test('bad TLS configuration: exit 2, one line naming the flag, no secret', async (t) => {
    const wrongPass = join(pki.dir, 'wrong-passphrase');
    writeFileSync(wrongPass, 'not it\n', { mode: 0o600 });
    const cases: Array<[string[], RegExp]> = [
      [['--to', 'tcp://127.0.0.1:1', '--ca', ca.cert], /^auditfwd: --ca: only for a TLS drain/],
      [['--to', 'tls://127.0.0.1:1', '--framing', 'lf'], /^auditfwd: --framing: lf is not allowed over TLS/],
      [['--to', 'tls://127.0.0.1:1', '--ca', join(pki.dir, 'missing.pem')], /^auditfwd: --ca: cannot read .*missing\.pem \(ENOENT\)/],
      [['--to', 'tls://127.0.0.1:1', '--ca', passFile], /^auditfwd: --ca: .* holds no PEM certificate/],
      [['--to', 'tls://127.0.0.1:1', '--cert', client.cert], /^auditfwd: --cert: needs --key/],
      [['--to', 'tls://127.0.0.1:1', '--cert', client.cert, '--key', client.key, '--key-passphrase-file', wrongPass], /^auditfwd: --key: .* cannot be decrypted/],
      [['--to', 'tls://127.0.0.1:1', '--fingerprint', 'md5:00'], /^auditfwd: --fingerprint: "md5" is not supported/],
      [['--to', 'tls://127.0.0.1:1', '--ca', ca.cert, '--tls-insecure-skip-verify'], /^auditfwd: --tls-insecure-skip-verify: cannot be combined/],
      [['--to', '-', '--tls'], /^auditfwd: --tls: --to - writes to stdout/],
    ];
    await Promise.all(
      cases.map(async ([args, re]) => {
        const run = runAuditfwd(t, args);
        t.equal(await run.exited, 2, args.join(' '));
        const lines = run.stderr().trimEnd().split('\n');
        t.equal(lines.length, 1, 'one line', { stderr: run.stderr() });
        t.match(lines[0], re);
        t.notMatch(run.stderr(), 'not it');
      }),
    );
  });
}
