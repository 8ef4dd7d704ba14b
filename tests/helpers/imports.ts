/**
 * The imports of the repository's TypeScript files, as the layering test reads them: every static
 * `import`/`export ... from`, `import type`, and dynamic `import("...")` or `import(`...`)` with a
 * literal specifier, resolved against the importing file.
 */

/** One import: the file that makes it and the specifier as written and resolved. */
export interface ImportEdge {
  /** Repository-relative path of the importing file, e.g. "src/train.ts". */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** Repository-relative path of the target for relative specifiers; null for others. */
  to: string | null;
}

const PATTERNS = [
  /\bimport\s+(?:type\s+)?[^'"`;]*?\bfrom\s+["']([^"']+)["']/g,
  /\bexport\s+(?:type\s+)?(?:\*|\{[^}]*\})\s*(?:as\s+\w+\s+)?from\s+["']([^"']+)["']/g,
  /\bimport\s+["']([^"']+)["']/g,
  /\bimport\s*\(\s*["'`]([^"'`$]+)["'`]\s*[,)]/g,
];

/** Strips comments so that examples in doc comments are not read as imports. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** The imports in `source`, the text of the file at repository path `path`. */
export function importsOf(path: string, source: string): ImportEdge[] {
  const text = stripComments(source), out: ImportEdge[] = [];
  for (const re of PATTERNS) {
    for (const m of text.matchAll(re)) {
      const specifier = m[1];
      let to: string | null = null;
      if (specifier.startsWith("./") || specifier.startsWith("../")) {
        const url = new URL(specifier, `file:///repo/${path}`);
        to = decodeURIComponent(url.pathname.slice("/repo/".length));
      }
      out.push({ from: path, specifier, to });
    }
  }
  return out;
}

/** Every .ts file under `dir` (repository-relative, forward slashes), recursively. */
export async function tsFiles(root: URL, dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir + "/", root))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await tsFiles(root, p));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}
