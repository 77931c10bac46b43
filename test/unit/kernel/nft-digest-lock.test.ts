// tableDigest (helper/kernel/nft.ts) and the run-dir lock (helper/kernel/lock.ts).
import { mkdtempSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableDigest } from '../../../helper/kernel/nft.js';
import { LockHeld, takeRunLock } from '../../../helper/kernel/lock.js';

const listing = (counter: string, gated: string, rule = 'goto refuse') => `table inet tunnelgate {
	counter dropped {
		${counter}
	}

	set gated_if {
		type iface_index
		elements = { ${gated} }
	}

	chain gate_out {
		${rule}
	}
}
`;

describe('tableDigest', () => {
  it('ignores counter values and the names gated indexes print under (a rename)', () => {
    const d = tableDigest(listing('packets 0 bytes 0', '"wg0", 12'));
    expect(tableDigest(listing('packets 17 bytes 1020', '"other", 12'))).toBe(d);
  });

  it('changes with a rule, or with the number of gated indexes', () => {
    const d = tableDigest(listing('packets 0 bytes 0', '"wg0"'));
    expect(tableDigest(listing('packets 0 bytes 0', '"wg0"', 'accept'))).not.toBe(d);
    expect(tableDigest(listing('packets 0 bytes 0', '"wg0", 12'))).not.toBe(d);
  });
});

describe('takeRunLock', () => {
  it('a second taker is refused with the holder pid; closing the first releases it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tg-lock-'));
    try {
      const file = path.join(dir, 'helper.lock');
      const fd = await takeRunLock(file);
      expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
      const second = await takeRunLock(file).catch((e: unknown) => e);
      expect(second).toBeInstanceOf(LockHeld);
      expect((second as LockHeld).pid).toBe(process.pid);
      expect((second as Error).message).toContain(`pid ${process.pid}`);
      closeSync(fd);
      closeSync(await takeRunLock(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
