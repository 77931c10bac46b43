// tableDigest (helper/kernel/nft.ts) and the run-dir lock (helper/kernel/lock.ts).
import { mkdtempSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableDigest, tableOutline } from '../../../helper/kernel/nft.js';
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

  it('ignores the names of every iface_index set (the zones\' and enforce_if), not only gated_if\'s (a rename made a false tamper note)', () => {
    const zoned = (name: string) => listing('packets 0 bytes 0', `"${name}"`).replace('\tchain gate_out', `\tset z1_if {\n\t\ttype iface_index\n\t\telements = { "${name}" }\n\t}\n\n\tset enforce_if {\n\t\ttype iface_index\n\t\telements = { "${name}", 9 }\n\t}\n\n\tchain gate_out`);
    expect(tableDigest(zoned('wgx1'))).toBe(tableDigest(zoned('renamed')));
    expect(tableDigest(zoned('wgx1'))).not.toBe(tableDigest(zoned('wgx1').replace('"wgx1", 9', '"wgx1"')));
  });

  it('tableOutline: the comment and the chain and set names, the same for a listing and the rendered text', () => {
    const rendered = `table inet tunnelgate {}\ndelete table inet tunnelgate\ntable inet tunnelgate {\n\tcomment "gate for wg0"\n\tset gated_if {\n\t\ttype iface_index\n\t}\n\tchain gate_out {\n\t\tgoto refuse\n\t}\n}\n`;
    const listed = `table inet tunnelgate {\n\tcomment "gate for wg0"\n\tset gated_if {\n\t\ttype iface_index\n\t\telements = { "wg0" }\n\t}\n\n\tchain gate_out {\n\t\tgoto refuse\n\t}\n}\n`;
    expect(tableOutline(listed)).toBe(tableOutline(rendered));
    expect(tableOutline(listed.replace('wg0"', 'wg1"'))).not.toBe(tableOutline(rendered));
    expect(tableOutline(listed.replace('chain gate_out', 'chain z9_out'))).not.toBe(tableOutline(rendered));
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
