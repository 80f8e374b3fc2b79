import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { freePort } from '../helpers/net.js';

t.test('freePort: below the ephemeral range, where listen(0) and connect() never land, and free', async (t) => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  if (!(low - 2048 >= 4096)) {
    t.comment(`the ephemeral range starts at ${low}: freePort falls back to listen(0) here`);
    t.skip('no room below the ephemeral range');
    return;
  }
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    t.ok(port >= 2048 && port < low, `${port} is below ${low}`);
    const srv = createServer().listen(port, '127.0.0.1');
    await once(srv, 'listening');
    srv.close();
    await once(srv, 'close');
  }
});
