// explain on a PID: "no such process" told apart from a process that cannot be read or has no program.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../common/errors.js';
import { processError } from '../../../helper/api/handlers/explain.js';

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('explain PID: why /proc/PID could not be read', () => {
  it('gone: no process', () => {
    const e = processError(4242, errno('ENOENT'), () => false);
    expect(e).toMatchObject({ code: ErrorCode.NotFound, message: 'no process 4242' });
  });

  it('there, but no executable (a kernel thread): said so, not "no process"', () => {
    const e = processError(2, errno('ENOENT'), () => true);
    expect(e).toMatchObject({ code: ErrorCode.NotFound });
    expect(e.message).toMatch(/^process 2 has no program to explain \(a kernel thread/);
  });

  it('not readable (EACCES, EPERM): the errno, never "no process"', () => {
    for (const code of ['EACCES', 'EPERM']) {
      const e = processError(1, errno(code), () => true);
      expect(e).toMatchObject({ code: ErrorCode.Internal, message: `cannot read process 1: ${code}` });
    }
  });
});
