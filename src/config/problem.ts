/** Problems found in a fleet.yaml, each with the position of the YAML node it concerns. */

/**
 * One problem. `path` uses dots for keys and brackets for sequence indices, e.g. `scaleSets[1].provider.namespace`;
 * a key that is not a plain identifier is quoted: `podLabels["app.kubernetes.io/name"]`. `line` and `col` are
 * 1-based; both are 0 when the problem concerns the whole file (it cannot be read).
 */
export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly path: string;
  readonly message: string;
}

/** A problem before it is located in the YAML source. `target: 'key'` points at the key rather than its value. */
export interface PathIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly target?: 'key';
}

/** `fleet.yaml:12:7 scaleSets[0].max: must be at least 1` (path and position left out when there is none). */
export function formatProblem(problem: Problem): string {
  const where = problem.line > 0 ? `${problem.file}:${problem.line}:${problem.col}` : problem.file;
  return problem.path === ''
    ? `${where}: ${problem.message}`
    : `${where} ${problem.path}: ${problem.message}`;
}

/** Renders a path in the style described on Problem. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}
