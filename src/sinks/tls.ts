import { createHash } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { nodeTls } from './lazy-tls.js';
import type { Logger } from '../telemetry/log.js';
import type { TlsMaterial } from './tls-material.js';
import { pinnedLookup, type Opener } from './connection.js';

/**
 * In TLS 1.3 the client finishes its handshake before the server has judged the client's certificate;
 * a server that refuses it answers with an alert one round trip later. Data written in between would
 * count as handed on and be lost, on every retry. So a TLS 1.3 connection is used only once the server
 * has shown it accepted us (a NewSessionTicket, which OpenSSL and Node servers send right after) or this
 * long has passed without an alert (servers that send no tickets, e.g. GnuTLS without ticket keys).
 */
export const TLS13_VERDICT_MS = 300;

/** Errors a handshake can end with, by OpenSSL or Node code, and what the operator should look at. */
const CAUSES: Array<[RegExp, string]> = [
  [/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED)$/, 'the server certificate is not signed by a trusted CA (--ca, else the system trust store)'],
  [/^(ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)$/, 'the server certificate does not name the drain host in its subjectAltName (--servername sets the name checked)'],
  [/^CERT_HAS_EXPIRED$/, 'the server certificate has expired'],
  [/^CERT_NOT_YET_VALID$/, 'the server certificate is not valid yet (check both clocks)'],
  [/^FINGERPRINT_MISMATCH$/, 'the server certificate does not match --fingerprint'],
  [/CERTIFICATE_REQUIRED/, 'the server requires a client certificate (--cert, --key)'],
  [/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|DECRYPT_ERROR)/, 'the server rejected the client certificate'],
  [/ALERT_HANDSHAKE_FAILURE/, 'the server refused the handshake (no client certificate, or no common cipher)'],
  [/WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/, 'the drain does not speak TLS on this port'],
  [/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE/, 'no common TLS version (auditfwd requires TLS 1.2 or newer)'],
  [/^HANDSHAKE_CLOSED$/, 'the drain closed the connection during the TLS handshake (it may require a client certificate, or not speak TLS)'],
];

function tlsError(code: string, detail?: string): NodeJS.ErrnoException {
  const cause = CAUSES.find(([re]) => re.test(code))?.[1] ?? 'TLS handshake failed';
  return Object.assign(new Error(detail ? `${cause}: ${detail}` : cause), { code });
}

function connectionOptions(material: TlsMaterial, host: string): ConnectionOptions {
  const { settings } = material;
  const name = settings.servername ?? host;
  const opts: ConnectionOptions = {
    host,
    secureContext: material.current.context,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: !settings.insecureSkipVerify && settings.fingerprints.length === 0,
  };
  // RFC 6066 forbids IP literals as SNI; an IP is still checked against the certificate's IP SANs.
  if (!isIP(name)) opts.servername = name;
  // Node checks `servername || host`; an IP-literal --servername is not sent, so it is checked here.
  else if (settings.servername) opts.checkServerIdentity = (_host, cert) => nodeTls().checkServerIdentity(name, cert);
  return opts;
}

/**
 * Opens TLS connections for a sink's Connection (its `open` option): TCP connect, handshake, verification. A rejected
 * promise is a failed attempt, retried by the Connection with its backoff; nothing is ever sent in plaintext.
 */
export function tlsOpener(material: TlsMaterial, log: Logger): Opener {
  return (host, port, timeoutMs, signal, address) =>
    new Promise<Socket>((resolve, reject) => {
      const { settings } = material;
      const sock: TLSSocket = nodeTls().connect({ ...connectionOptions(material, host), port, lookup: pinnedLookup(address) });
      let tcpUp = false;
      let ticket = false;
      let settled = false;
      let verdictPending = false;
      const timer = setTimeout(() => {
        // Connected but no answer to the ClientHello: typically a plain-TCP syslog port, which waits for a frame.
        const hint = tcpUp ? `TLS handshake got no answer within ${timeoutMs} ms: the drain accepted the TCP connection but may not speak TLS on this port` : `TLS connect timed out after ${timeoutMs} ms`;
        fail(Object.assign(new Error(hint), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      const fail = (err: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        sock.destroy();
        reject(err);
      };
      const succeed = () => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        sock.removeListener('error', onError);
        sock.removeListener('close', onClose);
        resolve(sock);
      };
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code ?? '';
        if (!tcpUp) return fail(err); // refused, unreachable: the Connection reports those as for plain TCP
        if (code === 'ECONNRESET' || code === 'EPIPE') return fail(tlsError('HANDSHAKE_CLOSED', code));
        fail(tlsError(code || 'TLS', err.message));
      };
      const onClose = () => fail(tlsError('HANDSHAKE_CLOSED'));
      const startedMs = Date.now();
      // The signal is the sink's, for its whole life: the listener goes when the attempt settles,
      // or every attempt of an outage would keep its socket (and Node warn of a leak after 10).
      function onAbort(): void {
        if (settled) return;
        // Given up (--exit-timeout, shutdown) before the connect timeout could say why: say it now.
        if (tcpUp) log.warn({ drain: `${host}:${port}`, waitedMs: Date.now() - startedMs }, 'gave up waiting for the TLS handshake: the drain accepted the TCP connection but did not answer; it may not speak TLS on this port');
        fail(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      }
      signal?.addEventListener('abort', onAbort);
      sock.once('connect', () => (tcpUp = true));
      // 'session' is emitted from inside OpenSSL's read of the ticket; a write in the promise
      // continuation would run re-entrantly there and corrupt the record stream (bad record mac).
      sock.on('session', () => {
        ticket = true;
        if (verdictPending) setImmediate(succeed);
      });
      sock.on('error', onError);
      sock.once('close', onClose);
      sock.once('secureConnect', () => {
        if (settings.fingerprints.length) {
          const cert = sock.getPeerCertificate();
          const seen = cert?.raw ? createHash('sha256').update(cert.raw).digest('hex') : '';
          if (!settings.fingerprints.includes(seen)) {
            return fail(tlsError('FINGERPRINT_MISMATCH', `its sha256 is ${seen.replace(/(..)(?!$)/g, '$1:').toUpperCase() || 'unknown (no certificate)'}`));
          }
        }
        if (settings.insecureSkipVerify) {
          log.warn(
            { drain: `${host}:${port}`, authorizationError: sock.authorizationError },
            'TLS server certificate NOT verified (--tls-insecure-skip-verify): anyone on the path can impersonate the drain and read audit events',
          );
        }
        if (sock.getProtocol() !== 'TLSv1.3' || ticket) return void setImmediate(succeed);
        verdictPending = true;
        setTimeout(succeed, TLS13_VERDICT_MS).unref();
      });
    });
}
