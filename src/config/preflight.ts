import { constants } from 'node:fs';
import { access, mkdir, open, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { loadTls, TlsMaterialError } from '../sinks/tls-material.js';
import { NotRegularFileError, openRegular } from '../sources/file/open-regular.js';
import { ensurePrivateDir, UnsafeDirError } from '../state/private-dir.js';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { loadK8sFiles } from './k8s-config.js';
import { shownPath } from './secret-path.js';

/**
 * What can only be checked on this machine, all of it, every problem reported: each file the settings
 * name is read (and the TLS material and webhook files loaded as they will be), and the state and
 * spill folders must be creatable and writable. `create`: make the folders (a real start); without
 * it (--check-config) nothing on disk changes.
 */
export async function preflight(cfg: Config, create: boolean): Promise<string[]> {
  const problems: string[] = [];
  const collect = async (check: () => unknown) => {
    try {
      await check();
    } catch (err) {
      if (err instanceof ConfigError || err instanceof TlsMaterialError) problems.push(err.message);
      else throw err;
    }
  };
  // Every named file first, so that one unreadable file does not hide the next.
  const named = namedFiles(cfg);
  for (const [flag, path] of named) await collect(() => readable(flag, path));
  if (problems.length === 0) {
    if (cfg.tls) await collect(() => loadTls(cfg.tls!));
    await collect(() => loadK8sFiles(cfg.k8s));
  }
  const fileSources = cfg.files.filter((f) => f !== '-');
  const before = problems.length;
  if (fileSources.length > 0) await collect(() => writableDir('state-dir', cfg.stateDir, create, true));
  // The default spill (<state-dir>/spill) would only repeat a state folder problem.
  const repeats = problems.length > before && cfg.bufferDir?.startsWith(cfg.stateDir + sep);
  if (cfg.bufferDir && !repeats) await collect(() => writableDir('buffer-dir', cfg.bufferDir!, create));
  for (const file of fileSources) await collect(() => followable(file));
  return problems;
}

/** The files the settings name, by flag: TLS material, passphrase, webhook certificate and token, NATS login. */
function namedFiles(cfg: Config): Array<[string, string]> {
  const out: Array<[string, string | undefined]> = [];
  if (cfg.tls) out.push(['ca', cfg.tls.ca], ['cert', cfg.tls.cert], ['key', cfg.tls.key], ['key-passphrase-file', cfg.tls.keyPassphraseFile]);
  const w = cfg.k8s.webhook;
  if (w) out.push(['webhook-tls-cert', w.tlsCertFile], ['webhook-tls-key', w.tlsKeyFile], ['webhook-token-file', w.tokenFile]);
  const nats = cfg.nats?.access;
  if (nats) out.push(['nats-creds', nats.credsFile], ['nats-nkey', nats.nkeyFile], ['nats-token-file', nats.tokenFile]);
  return out.filter((e): e is [string, string] => e[1] !== undefined);
}

async function readable(flag: string, path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new ConfigError(`--${flag}: ${shownPath(flag, path)} is a directory`);
    await (await openRegular(path)).close();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // A secret typed where its file's path belongs is not echoed (shownPath).
    if (err instanceof NotRegularFileError) throw new ConfigError(`--${flag}: ${shownPath(flag, path)} is a ${err.kind}, not a regular file`);
    throw new ConfigError(`--${flag}: cannot read ${shownPath(flag, path)} (${(err as NodeJS.ErrnoException).code})`);
  }
}

/** Kernel file systems where a state file would not be a file: writes fail or hang. */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
]);

/**
 * `dir` exists as a writable folder on a real file system, or can be made one. `ownOnly`: it must also
 * be this user's alone (ensurePrivateDir), as the state folder must.
 */
async function writableDir(flag: string, dir: string, create: boolean, ownOnly = false): Promise<void> {
  let existing = dir;
  while (!(await stat(existing).catch(() => undefined))) {
    if (dirname(existing) === existing) break;
    existing = dirname(existing);
  }
  const st = await stat(existing).catch(() => undefined);
  if (!st?.isDirectory()) throw new ConfigError(`--${flag}: ${existing === dir ? `${dir} is not a directory` : `cannot create ${dir}: ${existing} is not a directory`}`);
  const fs = await statfs(existing).catch(() => undefined);
  const pseudo = fs && PSEUDO_FS.get(fs.type);
  if (pseudo) throw new ConfigError(`--${flag}: ${dir} is on ${pseudo}, a kernel file system; choose a folder on disk`);
  if (!create || existing !== dir) {
    try {
      await access(existing, constants.W_OK | constants.X_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(`--${flag}: ${existing === dir ? `${dir} is not writable` : `cannot create ${dir}: ${existing} is not writable`} (${code})`);
    }
  }
  // An existing folder is inspected, never changed; a missing one is made only by a real start.
  if (ownOnly && (create || existing === dir)) {
    try {
      await ensurePrivateDir(dir);
    } catch (err) {
      if (err instanceof UnsafeDirError) throw new ConfigError(`--${flag}: ${err.message}`);
      throw err;
    }
  }
  if (!create) return;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError(`--${flag}: cannot create ${dir} (${(err as NodeJS.ErrnoException).code})`);
  }
  // access() trusts permission bits; a file actually written shows a read-only mount or a full disk.
  const probe = join(dir, `.auditfwd-probe-${process.pid}`);
  try {
    const fh = await open(probe, 'wx', 0o600);
    await fh.write('x');
    await fh.close();
  } catch (err) {
    throw new ConfigError(`--${flag}: ${dir} is not writable (${(err as NodeJS.ErrnoException).code})`);
  } finally {
    await rm(probe, { force: true });
  }
}

/** A file to follow: absent is fine (waited for), a folder or an unreadable file is not. */
async function followable(file: string): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  if (!st) return; // not there yet: waited for, kube-apiserver creates it when it starts
  if (st.isDirectory()) throw new ConfigError(`--file: ${file} is a directory`);
  try {
    await (await openRegular(file)).close();
  } catch (err) {
    if (err instanceof NotRegularFileError) throw new ConfigError(`--file: ${err.message} (only regular files are followed; pipe a FIFO to stdin)`);
    throw new ConfigError(`--file: ${file} cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
}
