import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { accepts, freePort } from './net.js';
import { tiedToTest } from './proc.js';

const NATS_SERVER = '/usr/sbin/nats-server';

interface TestLike {
  teardown(fn: () => unknown): void;
}

/** Why a test needing nats-server cannot run here, or undefined. */
export function natsServerMissing(): string | undefined {
  return existsSync(NATS_SERVER) ? undefined : `${NATS_SERVER} not found (Debian package nats-server)`;
}

interface Node {
  name: string;
  port: number;
  conf: string;
  proc: ChildProcess | undefined;
  log: string;
}

/**
 * A NATS cluster with JetStream (file storage) on 127.0.0.1, each node with its own config and
 * store folder; the test's teardown kills every node and removes the folder, also on failure.
 */
export class NatsCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: Node[],
  ) {}

  /** `extra`: more lines for every node's config (authorization, ...). */
  static async start(t: TestLike, size = 3, extra: string[] = []): Promise<NatsCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'auditfwd-nats-'));
    const ports = await Promise.all(Array.from({ length: size * 2 }, () => freePort()));
    const nodes: Node[] = [];
    const cluster = new NatsCluster(dir, nodes);
    t.teardown(() => cluster.stop());
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const store = join(dir, name);
      mkdirSync(store);
      const routes = ports.slice(size).filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
      const conf = join(dir, `${name}.conf`);
      writeFileSync(
        conf,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${ports[i]}`,
          `jetstream { store_dir: "${store}", max_memory_store: 64MB, max_file_store: 2GB }`,
          ...(size > 1 ? [`cluster { name: auditfwd-test, listen: 127.0.0.1:${ports[size + i]}, routes: [${routes.join(', ')}] }`] : []),
          ...extra,
        ].join('\n') + '\n',
      );
      nodes.push({ name, port: ports[i], conf, proc: undefined, log: '' });
    }
    await Promise.all(nodes.map((_, i) => cluster.startNode(i)));
    return cluster;
  }

  get urls(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  async startNode(i: number): Promise<void> {
    const node = this.nodes[i];
    const proc = spawn(...tiedToTest(NATS_SERVER, ['-c', node.conf]), { stdio: ['ignore', 'pipe', 'pipe'] });
    node.proc = proc;
    const keep = (d: Buffer) => (node.log = (node.log + d.toString()).slice(-20_000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const deadline = Date.now() + 10_000;
    while (!(await accepts(node.port))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server ${node.name} did not start:\n${node.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill9(i: number): Promise<void> {
    const proc = this.nodes[i].proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }

  indexOfPort(port: number): number {
    return this.nodes.findIndex((n) => n.port === port);
  }

  logs(): string {
    return this.nodes.map((n) => `--- ${n.name}\n${n.log}`).join('\n');
  }

  async client(token?: string): Promise<NatsConnection> {
    return connect({ servers: this.nodes.map((n) => `127.0.0.1:${n.port}`), maxReconnectAttempts: -1, reconnectTimeWait: 200, ...(token && { token }) });
  }

  /** Creates a replicated file stream once the cluster has elected its JetStream leader. */
  async addStream(nc: NatsConnection, name: string, subjects: string[], replicas = 3): Promise<JetStreamManager> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2000 });
        await jsm.streams.add({ name, subjects, num_replicas: replicas, storage: 'file' as never, duplicate_window: 120_000_000_000 });
        return jsm;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cannot create stream ${name}: ${(err as Error).message}\n${this.logs()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.kill9(i)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Every message of the stream, in stream order, read with an ordered consumer. Asked again for a
 * while: after a node's kill -9 the test's own client may still be reconnecting, or the cluster
 * electing a JetStream leader, and the API request times out (seen in CI).
 */
export async function readStream(nc: NatsConnection, stream: string, patienceMs = 30_000): Promise<JsMsg[]> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    try {
      return await readStreamOnce(nc, stream);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function readStreamOnce(nc: NatsConnection, stream: string): Promise<JsMsg[]> {
  const jsm = await jetstreamManager(nc, { timeout: 2000 });
  const total = (await jsm.streams.info(stream)).state.messages;
  const out: JsMsg[] = [];
  if (total === 0) return out;
  const consumer = await jetstream(nc, { timeout: 2000 }).consumers.get(stream);
  const messages = await consumer.consume();
  for await (const m of messages) {
    out.push(m);
    if (m.info.pending === 0) break;
  }
  await messages.close();
  return out;
}
