/** One thing wrong with a profile. `path` names the field (`rules[2].binary.sha256`), '' for the root. */
export interface Problem {
  path: string;
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function joinKey(path: string, key: string): string {
  if (!IDENTIFIER.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

export function joinIndex(path: string, index: number): string {
  return `${path}[${index}]`;
}

/** The CLI contract: `FILE: path.to.field: message`, or `FILE: message` for the root. */
export function formatProblems(file: string, problems: readonly Problem[]): string[] {
  return problems.map((p) => (p.path === '' ? `${file}: ${p.message}` : `${file}: ${p.path}: ${p.message}`));
}
