import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its key, as files (what auditfwd and rsyslog take) and as PEM (what a Node server takes). */
export interface Issued {
  name: string;
  cert: string;
  key: string;
  certPem: Buffer;
  keyPem: Buffer;
  /** SHA-256 of the DER certificate, `AB:CD:…` as openssl and Node print it. */
  fingerprint256: string;
}

export interface IssueOptions {
  cn?: string;
  /** subjectAltName entries, e.g. ['DNS:localhost', 'IP:127.0.0.1'] (the default). */
  san?: string[];
  usage?: 'server' | 'client';
  /** Valid from 2020-01-01 to 2021-01-01: a real expired certificate, not one whose dates are reversed. */
  expired?: boolean;
  /** Encrypts the key (AES-256, PKCS#8) with this passphrase. */
  passphrase?: string;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const openssl = (cwd: string, args: string[]) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * A throw-away PKI in a test folder, made with the openssl command line (Debian's openssl 3.0). EC P-256
 * keys keep generation fast. Expired certificates come from `openssl ca -startdate/-enddate`, since
 * `openssl x509` in 3.0 cannot set a start date.
 */
export class TestPki {
  private serial = 1;

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'db'), { recursive: true });
    writeFileSync(join(dir, 'db', 'index.txt'), '');
    writeFileSync(
      join(dir, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = test',
        '[test]',
        'database = db/index.txt',
        'new_certs_dir = db',
        'serial = db/serial',
        'default_md = sha256',
        'policy = any',
        'copy_extensions = copy',
        'unique_subject = no',
        '[any]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
  }

  private issued(name: string): Issued {
    const cert = join(this.dir, `${name}.pem`);
    const key = join(this.dir, `${name}.key`);
    const certPem = readFileSync(cert);
    return { name, cert, key, certPem, keyPem: readFileSync(key), fingerprint256: new X509Certificate(certPem).fingerprint256 };
  }

  /** A self-signed CA. */
  ca(name: string): Issued {
    openssl(this.dir, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return this.issued(name);
  }

  /** A self-signed leaf (for fingerprint pinning and --tls-insecure-skip-verify). */
  selfSigned(name: string, opts: IssueOptions = {}): Issued {
    openssl(this.dir, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${opts.cn ?? name}`,
      ...this.extensionArgs(opts),
    ]);
    return this.issued(name);
  }

  private extensionArgs(opts: IssueOptions): string[] {
    const san = opts.san ?? ['DNS:localhost', 'IP:127.0.0.1'];
    return [
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
      '-addext', `extendedKeyUsage=${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(san.length ? ['-addext', `subjectAltName=${san.join(',')}`] : []),
    ];
  }

  /** A leaf signed by `ca`. */
  issue(ca: Issued, name: string, opts: IssueOptions = {}): Issued {
    openssl(this.dir, [
      'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${opts.cn ?? name}`, ...this.extensionArgs(opts),
    ]);
    writeFileSync(join(this.dir, 'db', 'serial'), (this.serial++).toString(16).padStart(2, '0') + '\n');
    const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20210101000000Z'] : ['-days', '30'];
    openssl(this.dir, [
      'ca', '-batch', '-config', 'ca.cnf', '-cert', ca.cert, '-keyfile', ca.key, '-in', `${name}.csr`,
      '-out', `${name}.pem`, '-notext', ...dates,
    ]);
    if (opts.passphrase !== undefined) {
      execFileSync('openssl', ['pkey', '-in', `${name}.key`, '-out', `${name}.key.enc`, '-aes256', '-passout', 'env:PKI_PASS'], {
        cwd: this.dir,
        env: { ...process.env, PKI_PASS: opts.passphrase },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      renameSync(join(this.dir, `${name}.key.enc`), join(this.dir, `${name}.key`));
    }
    return this.issued(name);
  }
}
