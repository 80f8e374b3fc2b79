import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { TestDrain } from '../helpers/drain.js';
import { auditLines } from '../helpers/fixtures.js';
import { runAuditfwd } from '../helpers/proc.js';
import { shebangOf } from '../helpers/shebang.js';

/**
 * The kubeadm static pod example: its arguments are the ones auditfwd is run with here, with the
 * node's folders (its hostPath volumes) mapped to a test folder.
 */
const MANIFEST = fileURLToPath(new URL('../../examples/kubeadm/auditfwd.yaml', import.meta.url));

interface Container {
  command: string[];
  args: string[];
  env: Array<{ name: string; value?: string }>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  livenessProbe: { httpGet: { host: string; port: number; path: string } };
}
interface Pod {
  kind: string;
  metadata: { namespace: string };
  spec: { hostNetwork: boolean; containers: Container[]; volumes: Array<{ name: string; hostPath: { path: string } }> };
}

function load(): { pod: Pod; c: Container } {
  const pod = parse(readFileSync(MANIFEST, 'utf8')) as Pod;
  return { pod, c: pod.spec.containers[0] };
}

/** The value of --name=value in the container's args. */
const arg = (c: Container, name: string) => c.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

/** The args as the kubelet passes them ($(VAR) expanded), with every mounted path moved under `root`. */
function mapped(c: Container, root: string, env: Record<string, string>): string[] {
  return c.args.map((a) => {
    let out = a.replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? `$(${name})`);
    for (const m of c.volumeMounts) out = out.replace(m.mountPath, join(root, m.mountPath));
    return out;
  });
}

t.test('the kubeadm static pod follows the audit log and keeps its state on the node', async (t) => {
  const { pod, c } = load();
  t.match(pod, { kind: 'Pod', metadata: { namespace: 'kube-system' }, spec: { hostNetwork: true } });
  t.strictSame(c.command.slice(-1), ['/app/bin/auditfwd'], 'the image\'s auditfwd');
  const { unset, env, flags } = shebangOf();
  t.strictSame(c.command, ['node', ...flags, '/app/bin/auditfwd'], 'node with the flags of bin/auditfwd\'s #! line');
  for (const [name, value] of Object.entries(env)) t.ok(c.env.some((e) => e.name === name && e.value === value), `and its ${name}=${value}`);
  for (const name of unset) t.notOk(c.env.some((e) => e.name === name), `and not ${name}`);
  const file = arg(c, 'file')!;
  const state = arg(c, 'state-dir')!;
  t.equal(file, '/var/log/kubernetes/audit/audit.log', 'kubeadm\'s documented audit log path');
  // Each path auditfwd uses is on a hostPath volume: the log read-only, the state writable.
  const mountOf = (path: string) => c.volumeMounts.find((m) => path === m.mountPath || path.startsWith(m.mountPath + '/'));
  const hostPathOf = (name: string) => pod.spec.volumes.find((v) => v.name === name)?.hostPath?.path;
  t.match(mountOf(file), { readOnly: true });
  t.notOk(mountOf(state)?.readOnly, 'the state folder is writable');
  t.equal(hostPathOf(mountOf(file)!.name), '/var/log/kubernetes/audit');
  t.equal(hostPathOf(mountOf(state)!.name), '/var/lib/auditfwd', 'positions survive the pod');
  for (const [, name] of c.args.join(' ').matchAll(/\$\((\w+)\)/g)) t.ok(c.env.some((e) => e.name === name), `$(${name}) in args is defined`);
  const listen = arg(c, 'metrics-listen')!;
  t.equal(`${c.livenessProbe.httpGet.host}:${c.livenessProbe.httpGet.port}`, listen, 'the probe asks the metrics listener');
  t.equal(c.livenessProbe.httpGet.path, '/healthz');

  // The same arguments pass auditfwd's own pre-flight.
  const root = t.testdir({});
  for (const m of c.volumeMounts) mkdirSync(join(root, m.mountPath), { recursive: true });
  const args = mapped(c, root, { NODE_NAME: 'cp-1' });
  const check = runAuditfwd(t, [...args, '--check-config']);
  t.equal(await check.exited, 0, check.stderr());
  const eff = parse(check.stdout().toString()) as Record<string, unknown>;
  t.strictSame(eff.files, [join(root, file)]);
  t.equal(eff.hostname, 'cp-1');
  t.equal(eff.format, 'k8s-audit');
});

t.test('a short real run with the example\'s arguments forwards the audit log', async (t) => {
  const { c } = load();
  const root = t.testdir({});
  for (const m of c.volumeMounts) mkdirSync(join(root, m.mountPath), { recursive: true });
  const lines = auditLines().slice(0, 25);
  const log = join(root, arg(c, 'file')!);
  writeFileSync(log, lines.join('\n') + '\n');
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  // Only the drain differs (a local plain-TCP one for the real one), and the port of the metrics listener.
  const args = mapped(c, root, { NODE_NAME: 'cp-1' }).map((a) => (a.startsWith('--to=') ? `--to=tcp://${drain.address}` : a.startsWith('--metrics-listen=') ? '--metrics-listen=127.0.0.1:0' : a));
  const run = runAuditfwd(t, [...args, '--once']);
  t.equal(await run.exited, 0, run.stderr());
  t.equal(drain.messages.length, lines.length, 'every event reached the drain');
  t.match(drain.messages[0].toString(), / cp-1 kube-apiserver /, 'HOSTNAME is the node name, APP-NAME kube-apiserver');
  t.ok(readFileSync(join(root, arg(c, 'state-dir')!, 'checkpoints.json'), 'utf8').length > 0, 'positions saved in the hostPath state folder');
});

t.test('the image the pod runs starts node as bin/auditfwd\'s #! line does', async (t) => {
  const dockerfile = readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8');
  const { unset, env, flags } = shebangOf();
  const entry = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)![1]) as string[];
  t.strictSame(entry.slice(0, flags.length + 2), ['node', ...flags, '/app/bin/auditfwd'], 'its flags');
  for (const [name, value] of Object.entries(env)) t.match(dockerfile, new RegExp(`^ENV ${name}=${value}$`, 'm'), `its ${name}`);
  for (const name of unset) t.notMatch(dockerfile, new RegExp(`\\b${name}\\b`), `no ${name}`);
});
