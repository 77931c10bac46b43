// One helper per run dir (issue 9.11): an flock(2) on RUN/helper.lock that the kernel
// releases when the helper dies, however it dies (kill -9 included), so a stale file never
// blocks a start. Node has no flock, so flock(1) takes it on the helper's own open file
// description (passed as its fd 3): flock locks belong to the description, which only the
// helper keeps open after flock(1) exits.
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';

/** The lock is held by another live process. `pid`: what the holder wrote in the file, if anything. */
export class LockHeld extends Error {
  constructor(
    readonly file: string,
    readonly pid: number | undefined,
  ) {
    super(`another tunnelgate helper runs on this run directory (pid ${pid ?? 'unknown'} holds ${file}); this one changes nothing and exits`);
  }
}

/**
 * Take the exclusive lock on `file` (created 0644 if absent) without waiting, and write our
 * pid into it. Returns the descriptor (keep it open for the life of the process). Throws
 * LockHeld when another process holds it, or an Error when flock(1) cannot run.
 */
export async function takeRunLock(file: string): Promise<number> {
  const fd = openSync(file, 'a+', 0o644);
  const r = await new Promise<{ exitCode: number; stderr: string }>((resolve) => {
    const child = spawn('flock', ['--nonblock', '--exclusive', '--conflict-exit-code', '75', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (e) => resolve({ exitCode: -1, stderr: e.message }));
    child.once('close', (code) => resolve({ exitCode: code ?? -1, stderr }));
  });
  if (r.exitCode === 75) {
    closeSync(fd);
    const pid = Number(readFileSync(file, 'utf8').trim());
    throw new LockHeld(file, Number.isInteger(pid) && pid > 0 ? pid : undefined);
  }
  if (r.exitCode !== 0) {
    closeSync(fd);
    throw new Error(`cannot lock ${file}: flock exited ${r.exitCode}: ${String(r.stderr).trim()}`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return fd;
}
