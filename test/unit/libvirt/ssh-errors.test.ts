import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** ssh2's Client, faked: the test decides when it is ready and when it errs. */
const fake = vi.hoisted(() => ({ clients: [] as EventEmitter[] }));
vi.mock('ssh2', async () => {
  const { EventEmitter } = await import('node:events');
  const { PassThrough } = await import('node:stream');
  class Client extends EventEmitter {
    connect() {
      fake.clients.push(this);
    }
    exec(_cmd: string, cb: (err: Error | undefined, ch: unknown) => void) {
      const ch = Object.assign(new PassThrough(), { stderr: new PassThrough() });
      cb(undefined, ch);
    }
    end() {
      this.emit('close');
    }
  }
  return { Client };
});

const { sshDialer } = await import('../../../src/libvirt/transport/ssh.ts');

const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);
beforeEach(() => {
  fake.clients.length = 0;
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
});
afterEach(async () => {
  await new Promise((r) => setTimeout(r, 20));
  process.off('uncaughtException', onUncaught);
  expect(uncaught).toEqual([]);
});

const dialer = () =>
  sshDialer({ host: '192.0.2.1', noVerify: true, agent: '/nonexistent', remoteName: 'qemu:///system' });

describe('SSH transport when the ssh2 client errs', () => {
  it('F27: two client errors before ready are one failed dial, not a crash', async () => {
    const dialing = dialer().dial(1_000);
    const c = fake.clients[0]!;
    c.emit('error', new Error('read ECONNRESET'));
    c.emit('error', new Error('write EPIPE'));
    await expect(dialing).rejects.toThrow('ssh 192.0.2.1:22: read ECONNRESET');
  });

  it('F27: two client errors after ready close the RPC stream, not the process', async () => {
    const dialing = dialer().dial(1_000);
    const c = fake.clients[0]!;
    c.emit('ready');
    const stream: Duplex = await dialing;
    const closed = new Promise((r) => stream.once('close', r));
    c.emit('error', new Error('read ECONNRESET'));
    c.emit('error', new Error('write EPIPE'));
    await closed;
    expect(stream.destroyed).toBe(true);
  });
});
