// Text from the helper's data (program names, paths, problems) for places that show one
// plain line: tray menu labels, tooltips, desktop notifications. A program chooses its
// own name and path, so it could try to break the line, or reverse what follows
// (U+202E) to pass for another program.

/** C0 and C1 controls, and the characters that change text direction. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** One line: unsafe characters become spaces, runs of white space one space. */
export function oneLine(s: string): string {
  return s.replace(UNSAFE, ' ').replace(/\s+/g, ' ');
}

/** At most `max` characters, with an ellipsis where cut. */
export function clipText(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
