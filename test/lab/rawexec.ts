// `rawexec PROG ARG... -- ENV...`: execve with exactly this argv and envp (duplicate names
// kept, nothing added), which neither a shell nor Node's spawn can do. Tests of what the
// kernel shows of an exec (argv, envp, loader variables) build it with gcc.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const SOURCE = `#include <string.h>
#include <unistd.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int sep = 1;
  while (sep < argc && strcmp(argv[sep], "--")) sep++;
  argv[sep] = NULL;
  execve(argv[1], argv + 1, sep < argc ? argv + sep + 1 : argv + argc);
  perror("execve");
  return 127;
}
`;

/**
 * Compiles rawexec into `dir` (its source beside it as rawexec.c) and returns its path.
 * `static`: linked statically (rawexec-static), so it runs no loader and execs within
 * microseconds of its own exec: a launcher faster than anything the helper does after.
 * Exit 127 when the execve fails. Throws when gcc fails.
 */
export function buildRawexec(dir: string, opts: { static?: boolean } = {}): string {
  const file = path.join(dir, opts.static ? 'rawexec-static' : 'rawexec');
  writeFileSync(`${file}.c`, SOURCE);
  execFileSync('gcc', ['-O2', ...(opts.static ? ['-static'] : []), '-o', file, `${file}.c`]);
  return file;
}
