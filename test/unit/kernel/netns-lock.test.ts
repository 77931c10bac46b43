// The network namespace's helper lock (helper/kernel/netns-lock.ts) on real abstract sockets
// in this process's own network namespace, under names of the test's own.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NetnsLockHeld, takeNetnsLock } from '../../../helper/kernel/netns-lock.js';
import { peerCred } from '../../../helper/native/index.js';

const fresh = () => `tunnelgate-test/${process.pid}/${randomBytes(4).toString('hex')}`;
/** SO_PEERCRED as for a holder that runs as `uid` (the test may run as root or not). */
const as = (uid: number) => (fd: number) => ({ ...peerCred(fd), uid });

describe('takeNetnsLock', () => {
  it('a second take in the same network namespace is refused naming the holder (SO_PEERCRED), and the name is free again once closed', async () => {
    const name = fresh();
    const first = await takeNetnsLock({ name, peerCred: as(0) });
    expect(first.problem).toBeUndefined();
    const second = await takeNetnsLock({ name, peerCred: as(0) }).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(NetnsLockHeld);
    expect((second as NetnsLockHeld).holder.pid).toBe(process.pid);
    expect((second as NetnsLockHeld).message).toMatch(new RegExp(`another tunnelgate helper runs in this network namespace \\(pid ${process.pid}\\).*changes nothing and exits`));
    await first.close();
    const again = await takeNetnsLock({ name, peerCred: as(0) });
    await again.close();
  });

  it('a name held by a process that is not root (no helper) does not stop the helper: it starts and says so', async () => {
    const name = fresh();
    const squatter = await takeNetnsLock({ name, peerCred: as(0) });
    try {
      const lock = await takeNetnsLock({ name, peerCred: as(1000) });
      expect(lock.problem).toMatch(new RegExp(`held by pid ${process.pid}, uid 1000, which is not root and no helper`));
      await lock.close();
    } finally {
      await squatter.close();
    }
  });

  it('without SO_PEERCRED the holder is found by its socket inode (/proc/net/unix, /proc/PID/fd)', async () => {
    const name = fresh();
    const first = await takeNetnsLock({ name, peerCred: as(0) });
    try {
      const e = await takeNetnsLock({ name, peerCred: () => { throw new Error('no SO_PEERCRED'); } }).catch((x: unknown) => x);
      if (process.getuid?.() === 0) {
        expect(e).toBeInstanceOf(NetnsLockHeld);
        expect((e as NetnsLockHeld).holder.pid).toBe(process.pid);
      } else {
        // Found as well, and it is this process: not root, so no helper.
        expect((e as { problem?: string }).problem).toMatch(new RegExp(`held by pid ${process.pid}`));
      }
    } finally {
      await first.close();
    }
  });
});
