// A JSON syntax check run before JSON.parse: it gives line and column for syntax errors
// (V8's messages do not always carry a position) and catches duplicate keys, which
// JSON.parse resolves silently by keeping the last one.

import { joinIndex, joinKey } from './problem.js';
import type { Problem } from './problem.js';

const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class SyntaxStop {
  constructor(readonly problem: Problem) {}
}

/** Problems with the JSON text itself: one syntax error, or every duplicate key. */
export function scanJson(text: string): Problem[] {
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const duplicates: Problem[] = [];

  const stop = (expected: string): SyntaxStop => {
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const column = pos - before.lastIndexOf('\n');
    const ch = text[pos];
    const found = ch === undefined ? 'end of file' : ch === '\n' ? 'end of line' : `'${ch}'`;
    return new SyntaxStop({
      path: '',
      message: `invalid JSON at line ${line}, column ${column}: expected ${expected}, found ${found}`,
    });
  };
  const skipSpace = (): void => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos] ?? '')) pos++;
  };
  const expect = (ch: string, what: string): void => {
    skipSpace();
    if (text[pos] !== ch) throw stop(what);
    pos++;
  };

  const string = (): string => {
    const start = pos++;
    for (;;) {
      const ch = text[pos];
      if (ch === undefined || ch === '\n') throw stop('a closing \'"\'');
      if (ch === '"') return JSON.parse(text.slice(start, ++pos)) as string;
      if (ch < ' ') throw stop('an escaped control character');
      if (ch === '\\') {
        const esc = text[pos + 1] ?? '';
        if (esc !== '' && '"\\/bfnrt'.includes(esc)) pos += 2;
        else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) pos += 6;
        else throw stop('a valid escape sequence');
      } else pos++;
    }
  };

  const value = (path: string, depth: number): void => {
    skipSpace();
    if (depth > MAX_DEPTH) throw new SyntaxStop({ path, message: `nested deeper than ${MAX_DEPTH} levels` });
    const ch = text[pos];
    if (ch === '{') {
      pos++;
      skipSpace();
      if (text[pos] === '}') return void pos++;
      const seen = new Set<string>();
      for (;;) {
        skipSpace();
        if (text[pos] !== '"') throw stop('a property name in double quotes');
        const key = string();
        if (seen.has(key)) duplicates.push({ path: joinKey(path, key), message: 'duplicate key (only one may appear)' });
        seen.add(key);
        expect(':', "':' after the property name");
        value(joinKey(path, key), depth + 1);
        skipSpace();
        if (text[pos] === '}') return void pos++;
        expect(',', "',' or '}'");
      }
    }
    if (ch === '[') {
      pos++;
      skipSpace();
      if (text[pos] === ']') return void pos++;
      for (let i = 0; ; i++) {
        value(joinIndex(path, i), depth + 1);
        skipSpace();
        if (text[pos] === ']') return void pos++;
        expect(',', "',' or ']'");
      }
    }
    if (ch === '"') return void string();
    NUMBER.lastIndex = pos;
    const num = NUMBER.exec(text);
    if (num) return void (pos += num[0].length);
    const literal = ['true', 'false', 'null'].find((l) => text.startsWith(l, pos));
    if (literal) return void (pos += literal.length);
    throw stop('a value');
  };

  try {
    value('', 0);
    skipSpace();
    if (pos < text.length) throw stop('end of file');
  } catch (e) {
    if (e instanceof SyntaxStop) return [e.problem];
    throw e;
  }
  return duplicates;
}
