// A small C driver for the benchmarks that count what a fork, an exec or a thread costs the
// helper: the work is done by a separate process, timed there (CLOCK_MONOTONIC).
//   driver exec N PATH [x]: N fork+exec+exit+wait of PATH (each duration in ms with a 4th argument)
//   driver pair N A B: N times A then B, alternating, "msA msB" per line: load hits both alike
//   driver threads N: N threads created and joined, one after another
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export const DRIVER = String.raw`
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static void *nothing(void *a) { return a; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static double run(char *path) {
  char *args[] = {path, NULL}, *env[] = {"PATH=/bin", NULL};
  double t0 = now();
  pid_t p = fork();
  if (p == 0) { execve(path, args, env); _exit(127); }
  int st; waitpid(p, &st, 0);
  return now() - t0;
}
/* driver exec N PATH: N fork+exec+exit+wait (durations printed with a 4th argument).
   driver pair N A B: N times A then B, alternating, "msA msB" per line: load hits both alike.
   driver threads N: N threads created and joined, one after another. */
int main(int argc, char **argv) {
  int n = atoi(argv[2]);
  if (!strcmp(argv[1], "pair")) {
    for (int i = 0; i < n; i++) { double a = run(argv[3]); double b = run(argv[4]); printf("%.4f %.4f\n", a, b); }
    return 0;
  }
  if (!strcmp(argv[1], "threads")) {
    for (int i = 0; i < n; i++) { pthread_t t; pthread_create(&t, NULL, nothing, NULL); pthread_join(t, NULL); }
    return 0;
  }
  char *args[] = {argv[3], NULL}, *env[] = {"PATH=/bin", NULL};
  for (int i = 0; i < n; i++) {
    double t0 = now();
    pid_t p = fork();
    if (p == 0) { execve(argv[3], args, env); _exit(127); }
    int st; waitpid(p, &st, 0);
    if (argc > 4) printf("%.4f\n", now() - t0);
  }
  return 0;
}
`;

/** Compile the driver into `dir` (gcc); returns its path. */
export function buildDriver(dir: string): string {
  const driver = path.join(dir, 'driver');
  writeFileSync(`${driver}.c`, DRIVER);
  execFileSync('gcc', ['-O2', '-pthread', '-o', driver, `${driver}.c`]);
  return driver;
}
